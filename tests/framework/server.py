"""A real ``ember serve`` (API + gateway + VMs) on its own event loop thread, and boto3 clients for it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from ember.server import EmberServer, ServeSettings

REGION = "us-east-1"
STATE_POLL_S = 0.1
MICROVM_CTL_DATA = str(resources.files("microvm").joinpath("data"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """The real EmberServer on an event loop in a thread of its own (boto3 blocks the test's thread)."""

    def __init__(self, settings: ServeSettings) -> None:
        self.server = EmberServer(settings)
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


def upload_artifact(api_url: str, access_key_id: str, secret_access_key: str, zip_path: Path) -> str:
    """Upload a zip with ``POST /ember/artifacts`` (through the SDK); the ``file://`` URI to build from."""
    from ember.sdk import Client

    with Client(endpoint=api_url, region=REGION, access_key_id=access_key_id,
                secret_access_key=secret_access_key) as client:
        return client.images.upload(zip_path).uri


def artifact_uri(serve: ServerThread, zip_path: Path) -> str:
    """``upload_artifact`` into the root account of ``serve``."""
    creds = serve.server.credentials
    assert creds is not None
    return upload_artifact(f"http://127.0.0.1:{serve.server.settings.api_port}", creds.access_key_id,
                           creds.secret_access_key, zip_path)


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


