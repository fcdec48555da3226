"""Streams through the gateway to a real VM: SSE in order, 100 MiB up and down byte-exact, WebSocket echo.

The app in the guest (``STREAMING_APP``) is stdlib Python on the python-3.11 base; the server is a real
``ember serve`` in this process, so the RSS bound covers the gateway and the client together.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from ember.images.artifact import make_zip
from ember.images.bases import ensure_base
from ember.server import ServeSettings
from tests.framework.guest_apps import STREAMING_APP
from tests.framework.server import REGION, ServerThread, artifact_uri, client_for, free_port, wait_for

pytestmark = pytest.mark.vm

TRANSFER_BYTES = 100 << 20
MAX_RSS_GROWTH_BYTES = 50 << 20
BLOCK = hashlib.sha256(b"ember").digest() * 2048  # 64 KiB, the app's download pattern


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, dict[str, Any], dict[str, str]]]:
    ensure_base("python-3.11")
    home = tmp_path_factory.mktemp("ember-streams")
    app = home / "app"
    app.mkdir()
    (app / "app.py").write_text(STREAMING_APP)
    (app / "Dockerfile").write_text('FROM python:3.11-slim\nCOPY app.py /app.py\nCMD ["python3", "/app.py"]\n')
    running = ServerThread(ServeSettings(home=home, api_port=free_port(), gateway_port=free_port()))
    running.start()
    client = client_for(running)
    created = client.create_microvm_image(
        name="streams", baseImageArn=f"arn:aws:lambda:{REGION}:aws:microvm-image:python-3.11",
        buildRoleArn="arn:aws:iam::123456789012:role/build",
        codeArtifact={"uri": artifact_uri(running, make_zip(app, home / 'app.zip'))})
    got, _ = wait_for("build", lambda: client.get_microvm_image_version(imageIdentifier="streams",
                                                                        imageVersion=created["imageVersion"]),
                      lambda v: v["state"] in ("SUCCESSFUL", "FAILED"), 900, 1.0)
    assert got["state"] == "SUCCESSFUL", got.get("stateReason")
    vm_id = client.run_microvm(imageIdentifier="streams")["microvmId"]
    detail, _ = wait_for("run", lambda: client.get_microvm(microvmIdentifier=vm_id),
                         lambda v: v["state"] in ("RUNNING", "TERMINATED"), 180)
    assert detail["state"] == "RUNNING", detail.get("stateReason")
    token = client.create_microvm_auth_token(microvmIdentifier=vm_id, expirationInMinutes=30,
                                             allowedPorts=[{"port": 8080}])["authToken"]
    yield running, detail, dict(token)
    running.stop()


def _tls(running: ServerThread) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(running.server.settings.home / "tls" / "ca.pem"))


async def test_server_sent_events_arrive_in_order(vm) -> None:  # type: ignore[no-untyped-def]
    running, detail, token = vm
    events = []
    async with httpx.AsyncClient(verify=_tls(running), timeout=120) as http, \
            http.stream("GET", f"https://{detail['endpoint']}/sse", headers=token) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                events.append(int(line[6:]))
    assert events == list(range(100))


async def test_100_mib_upload_and_download_are_byte_exact_with_flat_memory(vm) -> None:  # type: ignore[no-untyped-def]
    running, detail, token = vm
    before = _rss()
    peak = before
    sent_digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        nonlocal peak
        for i in range(TRANSFER_BYTES // len(BLOCK)):
            chunk = BLOCK[i % 7:] + BLOCK[: i % 7]  # not the same block every time
            sent_digest.update(chunk)
            if i % 64 == 0:
                peak = max(peak, _rss())
            yield chunk

    async with httpx.AsyncClient(verify=_tls(running), timeout=600) as http:
        up = await http.post(f"https://{detail['endpoint']}/upload", content=body(),
                             headers={**token, "Content-Length": str(TRANSFER_BYTES)})
        assert up.status_code == 200, up.text
        assert up.json() == {"size": TRANSFER_BYTES, "sha256": sent_digest.hexdigest()}

        got_digest, n = hashlib.sha256(), 0
        async with http.stream("GET", f"https://{detail['endpoint']}/download/{TRANSFER_BYTES}",
                               headers=token) as resp:
            assert resp.status_code == 200
            async for chunk in resp.aiter_bytes():
                got_digest.update(chunk)
                n += len(chunk)
                if n % (4 << 20) < len(chunk):
                    peak = max(peak, _rss())
    expected = hashlib.sha256(BLOCK * (TRANSFER_BYTES // len(BLOCK))).hexdigest()
    assert n == TRANSFER_BYTES and got_digest.hexdigest() == expected
    assert peak - before < MAX_RSS_GROWTH_BYTES, f"RSS grew by {(peak - before) >> 20} MiB"


async def test_websocket_echo(vm) -> None:  # type: ignore[no-untyped-def]
    running, detail, token = vm
    protocols = ["lambda-microvms", f"lambda-microvms.authentication.{token['X-aws-proxy-auth']}",
                 "lambda-microvms.port.8080"]
    async with websockets.connect(f"wss://{detail['endpoint']}/ws", ssl=_tls(running),
                                  subprotocols=protocols, open_timeout=60) as ws:  # type: ignore[arg-type]
        for message in ("hello", "ember", "x" * 5000):
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), 30) == message
