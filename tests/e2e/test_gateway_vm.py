"""The gateway in front of real VMs: a real client library, hold-and-resume, and the shell.

A real ``ember serve`` (TLS gateway with its generated CA) serves a
code-interpreter image built through the API.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from ember.images.artifact import make_zip
from ember.images.bases import ensure_base
from ember.server import ServeSettings
from tests.framework.paths import EXAMPLES
from tests.framework.server import REGION, ServerThread, artifact_uri, client_for, free_port, wait_for

pytestmark = pytest.mark.vm

HOOKS = {"port": 8080, "microvmHooks": {"run": "ENABLED", "resume": "ENABLED", "suspend": "ENABLED"},
         "microvmImageHooks": {"ready": "ENABLED", "validate": "ENABLED"}}
SHELL = f"arn:aws:lambda:{REGION}:aws:network-connector:aws-network-connector:SHELL_INGRESS"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    ensure_base("python-3.11")
    home = tmp_path_factory.mktemp("ember-gw")
    running = ServerThread(ServeSettings(home=home, api_port=free_port(), gateway_port=free_port()))
    running.start()
    client = client_for(running)
    artifact = make_zip(EXAMPLES / "code-interpreter", home / "ci.zip")
    created = client.create_microvm_image(
        name="ci", baseImageArn=f"arn:aws:lambda:{REGION}:aws:microvm-image:python-3.11",
        buildRoleArn="arn:aws:iam::123456789012:role/build", codeArtifact={"uri": artifact_uri(running, artifact)},
        hooks=HOOKS)
    got, _ = wait_for("build", lambda: client.get_microvm_image_version(imageIdentifier="ci",
                                                                        imageVersion=created["imageVersion"]),
                      lambda v: v["state"] in ("SUCCESSFUL", "FAILED"), 900, 1.0)
    assert got["state"] == "SUCCESSFUL", got.get("stateReason")
    yield running
    running.stop()


def _run(client: Any, **kwargs: Any) -> dict[str, Any]:
    vm = client.run_microvm(imageIdentifier="ci", **kwargs)
    state, _ = wait_for("run", lambda: client.get_microvm(microvmIdentifier=vm["microvmId"]),
                        lambda v: v["state"] in ("RUNNING", "TERMINATED"), 180)
    assert state["state"] == "RUNNING", state.get("stateReason")
    return state


def _ca(serve: ServerThread) -> str:
    return str(serve.server.settings.home / "tls" / "ca.pem")


def test_microvm_ctl_endpoint_client_keeps_state_across_calls(serve: ServerThread, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from microvm.config import PlaneConfig
    from microvm.endpoint import EndpointClient

    creds = serve.server.credentials
    assert creds is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA_MICROVMS", f"http://127.0.0.1:{serve.server.settings.api_port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds.secret_access_key)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _ca(serve))
    vm = _run(client_for(serve))
    endpoint = EndpointClient(PlaneConfig(region=REGION), vm["microvmId"])
    assert endpoint.endpoint == vm["endpoint"]
    first = endpoint.post("/execute", json={"code": "total = 40"})
    assert first.status_code == 200, first.text
    second = endpoint.post("/execute", json={"code": "total += 2\nprint(total)"})
    assert second.json()["stdout"] == "42\n"


async def test_requests_to_a_suspended_vm_are_held_and_resume_it_once(serve: ServerThread) -> None:
    client = client_for(serve)
    vm = await asyncio.to_thread(_run, client, idlePolicy={"maxIdleDurationSeconds": 600,
                                                            "suspendedDurationSeconds": 0, "autoResumeEnabled": True})
    vm_id = vm["microvmId"]
    token = (await asyncio.to_thread(client.create_microvm_auth_token, microvmIdentifier=vm_id,
                                     expirationInMinutes=5, allowedPorts=[{"port": 8080}]))["authToken"]
    await asyncio.to_thread(client.suspend_microvm, microvmIdentifier=vm_id)
    await asyncio.to_thread(wait_for, "suspend", lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
                            lambda s: s == "SUSPENDED", 120)
    url = f"https://{vm['endpoint']}/state"
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=_ca(serve)), timeout=120) as http:
        responses = await asyncio.gather(*(http.get(url, headers=dict(token)) for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses if r.status_code != 200]
    states = [r.json() for r in responses]
    assert {s["pid"] for s in states} == {states[0]["pid"]}
    assert max(s["hooks"].get("resume", 0) for s in states) == 1, "more than one resume for 20 held requests"
    assert all("x-amzn-requestid" in r.headers for r in responses)


async def test_interactive_shell_runs_a_command(serve: ServerThread) -> None:
    client = client_for(serve)
    vm = await asyncio.to_thread(_run, client, ingressNetworkConnectors=[SHELL])
    token = (await asyncio.to_thread(client.create_microvm_shell_auth_token, microvmIdentifier=vm["microvmId"],
                                     expirationInMinutes=5))["authToken"]
    ctx = ssl.create_default_context(cafile=_ca(serve))
    url = f"wss://{vm['endpoint']}/.ember/shell"
    async with websockets.connect(url, ssl=ctx, additional_headers=dict(token), open_timeout=60) as ws:
        await ws.send(json.dumps({"resize": [100, 30]}))
        await ws.send(b"echo $((6*7)); stty size\n")
        seen = b""
        async with asyncio.timeout(60):
            while b"42" not in seen.split() or b"30 100" not in seen:
                frame = await ws.recv()
                seen += frame if isinstance(frame, bytes) else frame.encode()
    assert b"42" in seen.replace(b"\r", b" ").split()
