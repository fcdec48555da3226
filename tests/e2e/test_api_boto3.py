"""End to end through boto3: the real ``ember serve`` (API, builds, VMs under TCG) driven only by the public API.

One test walks the whole path a client takes: zip the code-interpreter example, CreateMicrovmImage from a
``file://`` artifact on the python-3.11 base, wait for the version to be SUCCESSFUL, RunMicrovm, wait for
RUNNING, list with pagination, suspend, resume and terminate. It prints how long each step took.

The server keeps its database, images and VMs in a temporary home; the guest kit and the managed bases come from
the default ``EMBER_HOME`` (where ``ember setup`` built them), which is where ``Host`` and the image builder look.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from ember.images.artifact import make_zip
from ember.images.bases import ensure_base
from ember.server import EmberServer, ServeSettings
from tests.framework.paths import EXAMPLES

pytestmark = pytest.mark.vm

EXAMPLE = EXAMPLES / "code-interpreter"
REGION = "us-east-1"
BUILD_TIMEOUT_S = 900.0
STATE_TIMEOUT_S = 180.0
BUILD_POLL_S = 1.0
STATE_POLL_S = 0.1
"""State changes are polled often, so the printed timings are accurate to about 0.1 s."""
HOOKS = {
    "port": 8080,
    "microvmHooks": {"run": "ENABLED", "resume": "ENABLED", "suspend": "ENABLED"},
    "microvmImageHooks": {"ready": "ENABLED", "validate": "ENABLED"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _ApiOnlyServer(EmberServer):
    """``ember serve`` without the gateway: this test reaches VMs only through the control plane."""

    async def _start_gateway(self, secret: bytes) -> None:
        return None


class ServerThread:
    """The real EmberServer on an event loop in a thread of its own (boto3 blocks the test's thread)."""

    def __init__(self, settings: ServeSettings) -> None:
        self.server = _ApiOnlyServer(settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ember-serve", daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=300)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=300)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    ensure_base("python-3.11")
    home = tmp_path_factory.mktemp("ember-home")
    settings = ServeSettings(home=home, api_port=free_port(), gateway_port=free_port(), gateway_tls=False)
    running = ServerThread(settings)
    running.start()
    yield running
    running.stop()


def client_for(serve: ServerThread) -> Any:
    creds = serve.server.credentials
    assert creds is not None
    core = botocore.session.Session()
    core.get_component("data_loader").search_paths.append(str(resources.files("microvm").joinpath("data")))
    session = boto3.session.Session(
        botocore_session=core,
        region_name=REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
    )
    return session.client(
        "lambda-microvms",
        endpoint_url=f"http://127.0.0.1:{serve.server.settings.api_port}",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


def build_log(serve: ServerThread, image: str, version: str, build_id: str) -> str:
    """The build's log through the extension route (signed like any call)."""
    creds = serve.server.credentials
    assert creds is not None
    url = (
        f"http://127.0.0.1:{serve.server.settings.api_port}/2025-09-09/microvm-images/{image}/versions/"
        f"{version}/builds/{build_id}/logs"
    )
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key), "lambda", REGION).add_auth(request)
    with urllib.request.urlopen(urllib.request.Request(url, headers=dict(request.headers)), timeout=30) as resp:
        return "\n".join(json.loads(line)["line"] for line in resp.read().decode().splitlines() if line)


def wait_for(what: str, fn: Any, done: Any, timeout_s: float, poll_s: float = STATE_POLL_S) -> tuple[Any, float]:
    t0 = time.monotonic()
    while True:
        value = fn()
        if done(value):
            return value, time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"{what}: still {value!r} after {timeout_s} s")
        time.sleep(poll_s)


def test_image_to_terminated_microvm_through_boto3(serve: ServerThread, tmp_path: Path) -> None:
    client = client_for(serve)
    artifact = make_zip(EXAMPLE, tmp_path / "code-interpreter.zip")
    timings: dict[str, float] = {}

    created = client.create_microvm_image(
        name="code-interpreter",
        baseImageArn=f"arn:aws:lambda:{REGION}:aws:microvm-image:python-3.11",
        buildRoleArn="arn:aws:iam::123456789012:role/build",
        codeArtifact={"uri": f"file://{artifact}"},
        resources=[{"minimumMemoryInMiB": 512}],
        hooks=HOOKS,
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    version = created["imageVersion"]
    builds = client.list_microvm_image_builds(imageIdentifier="code-interpreter", imageVersion=version)["items"]
    assert len(builds) == 1
    got, timings["create image -> SUCCESSFUL"] = wait_for(
        "image version",
        lambda: client.get_microvm_image_version(imageIdentifier="code-interpreter", imageVersion=version),
        lambda v: v["state"] in ("SUCCESSFUL", "FAILED"),
        BUILD_TIMEOUT_S,
        BUILD_POLL_S,
    )
    if got["state"] != "SUCCESSFUL":
        log = build_log(serve, "code-interpreter", version, builds[0]["buildId"])
        pytest.fail(f"build failed: {got.get('stateReason')}\n--- build log ---\n{log}")
    assert got["status"] == "ACTIVE"
    assert build_log(serve, "code-interpreter", version, builds[0]["buildId"])

    t0 = time.monotonic()
    vm = client.run_microvm(imageIdentifier="code-interpreter", runHookPayload='{"tenant": "e2e"}')
    vm_id = vm["microvmId"]
    assert vm["state"] == "PENDING"
    wait_for(
        "run",
        lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
        lambda s: s in ("RUNNING", "TERMINATED"),
        STATE_TIMEOUT_S,
    )
    timings["run -> RUNNING"] = time.monotonic() - t0
    assert client.get_microvm(microvmIdentifier=vm_id)["state"] == "RUNNING", client.get_microvm(
        microvmIdentifier=vm_id
    ).get("stateReason")

    pages = list(client.get_paginator("list_microvms").paginate(PaginationConfig={"PageSize": 1}))
    assert [item["microvmId"] for page in pages for item in page["items"]] == [vm_id]

    t0 = time.monotonic()
    client.suspend_microvm(microvmIdentifier=vm_id)
    state, _ = wait_for(
        "suspend",
        lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
        lambda s: s not in ("RUNNING", "SUSPENDING"),
        STATE_TIMEOUT_S,
    )
    timings["suspend -> SUSPENDED"] = time.monotonic() - t0
    assert state == "SUSPENDED"

    t0 = time.monotonic()
    client.resume_microvm(microvmIdentifier=vm_id)
    state, _ = wait_for(
        "resume",
        lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
        lambda s: s != "SUSPENDED",
        STATE_TIMEOUT_S,
    )
    timings["resume -> RUNNING"] = time.monotonic() - t0
    assert state == "RUNNING", client.get_microvm(microvmIdentifier=vm_id).get("stateReason")

    token = client.create_microvm_auth_token(
        microvmIdentifier=vm_id, expirationInMinutes=5, allowedPorts=[{"port": 8080}]
    )["authToken"]
    assert "X-aws-proxy-auth" in token

    t0 = time.monotonic()
    client.terminate_microvm(microvmIdentifier=vm_id)
    state, _ = wait_for(
        "terminate",
        lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
        lambda s: s == "TERMINATED",
        STATE_TIMEOUT_S,
    )
    timings["terminate -> TERMINATED"] = time.monotonic() - t0
    client.terminate_microvm(microvmIdentifier=vm_id)  # idempotent
    print("\n" + "\n".join(f"{step}: {seconds:.1f} s" for step, seconds in timings.items()))
