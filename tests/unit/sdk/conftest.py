"""Fixtures: a fake API server in a thread, and SDK clients pointed at it with fixed credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ember.sdk import Client

from .fakes import FakeServer

KEY_ID = "AKIDEXAMPLE00000001"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
ENV_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
            "EMBER_ROOT_ACCESS_KEY_ID", "EMBER_ROOT_SECRET_ACCESS_KEY", "EMBER_ENDPOINT", "EMBER_REGION",
            "EMBER_CA_BUNDLE", "EMBER_GATEWAY_SCHEME")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or endpoints leak in from the machine; EMBER_HOME is a fresh folder."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def client(server: FakeServer) -> Iterator[Client]:
    with Client(endpoint=server.url, region=REGION, access_key_id=KEY_ID, secret_access_key=SECRET,
                gateway_scheme="http") as c:
        yield c
