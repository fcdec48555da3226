"""A real API (``ember.api``) over a real SQLite store with the fake image and MicroVM services, for CLI tests.

No VM boots: builds succeed at once and MicroVMs move through the real state machine instantly
(``ember.api.testing``). The environment points the CLI at it (``EMBER_ENDPOINT`` and ``AWS_*``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ember.api.testing import ApiServer, add_account, make_context
from ember.store import Store

ACCOUNT = "111111111111"
KEY_ID = "AKIAEMBERCLITEST0001"
SECRET = "cli-secret/0123456789abcdefghijklmnopqrstuv"
CLEARED = ("AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "EMBER_ROOT_ACCESS_KEY_ID",
           "EMBER_ROOT_SECRET_ACCESS_KEY", "EMBER_REGION", "EMBER_CA_BUNDLE", "EMBER_GATEWAY_SCHEME")


@dataclass
class RunningApi:
    server: ApiServer
    store: Store
    home: Path


def running_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningApi]:
    """Start the API and point the environment at it (use from a fixture with ``yield from``)."""
    home = tmp_path / "home"
    base = home / "bases" / "python-3.11" / "20250909.test"
    base.mkdir(parents=True)
    (base / "manifest.json").write_text(json.dumps({"name": "python-3.11", "version": "20250909.test",
                                                    "created_at": 1757419200.0, "description": "test"}))
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMBER_HOME", str(home))
    store = Store.open(f"sqlite:///{tmp_path / 'ember.db'}")
    add_account(store, ACCOUNT, KEY_ID, SECRET)
    server = ApiServer(make_context(store, tmp_path / "images")).start()
    monkeypatch.setenv("EMBER_ENDPOINT", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    yield RunningApi(server, store, home)
    server.stop()
    store.close()
