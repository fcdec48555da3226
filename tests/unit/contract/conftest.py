"""Fixtures: the real service model from PyPI ``microvm-ctl`` 0.5.0, and a real botocore client over a fake wire.

The model is read from the installed package (never copied into Ember). ``wire`` answers every request the
client sends with whatever response a test queued, and keeps the requests so tests can inspect them.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

MODEL_DIR = "data/lambda-microvms/2025-09-09"


@pytest.fixture(scope="session")
def service_json() -> dict[str, Any]:
    """The botocore service model (``service-2.json``) as shipped in microvm-ctl."""
    path = resources.files("microvm").joinpath(MODEL_DIR, "service-2.json.gz")
    with path.open("rb") as raw, gzip.open(raw) as unzipped:
        return json.load(unzipped)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class FakeWire:
    """Queued responses for a botocore client, and the requests it sent."""

    responses: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    requests: list[AWSPreparedRequest] = field(default_factory=list)

    def reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        """Queue one response; ``body`` is JSON-encoded unless it is bytes."""
        data = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
        self.responses.append((status, {"Content-Type": "application/json", **(headers or {})}, data))

    def handle(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.requests.append(request)
        status, headers, body = self.responses.pop(0) if self.responses else (200, {}, b"{}")
        return AWSResponse(request.url, status, headers, _Raw(body))

    def last_json(self) -> dict[str, Any]:
        """The JSON body of the last request sent."""
        body = self.requests[-1].body
        return json.loads(body) if body else {}

    def reset(self) -> None:
        """Forget queued responses and sent requests."""
        self.responses.clear()
        self.requests.clear()


@pytest.fixture(scope="session")
def _session_wire() -> FakeWire:
    return FakeWire()


@pytest.fixture
def wire(_session_wire: FakeWire) -> Iterator[FakeWire]:
    """The fake wire, empty at the start of each test."""
    _session_wire.reset()
    yield _session_wire
    _session_wire.reset()


@pytest.fixture(scope="session")
def client(_session_wire: FakeWire) -> Any:
    """A boto3-style ``lambda-microvms`` client built from microvm-ctl's model, talking to ``wire``."""
    session = botocore.session.get_session()
    data_dir = str(resources.files("microvm").joinpath("data"))
    session.get_component("data_loader").search_paths.insert(0, data_dir)
    made = session.create_client(
        "lambda-microvms",
        region_name="us-east-1",
        endpoint_url="http://ember.invalid:9180",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    made.meta.events.register("before-send", _session_wire.handle)
    return made
