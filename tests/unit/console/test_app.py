"""The console's wiring: ``create_app`` is the API plus the console; ``ember serve`` runs it."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from ember.api.app import SESSION_AUTH
from ember.api.testing import make_context
from ember.console import create_app
from ember.console.sessions import SESSIONS
from ember.store import Store
from tests.unit.api.conftest import KEY_A


async def test_create_app_serves_the_api_and_the_console(console_store: Store, tmp_path: Path) -> None:
    app = create_app(make_context(console_store, tmp_path / "images"))
    assert SESSIONS in app and SESSION_AUTH in app
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/healthz")).status == 200
        signed_in = await client.post("/console/session", json={"accessKeyId": KEY_A[0], "secretAccessKey": KEY_A[1]})
        token = (await signed_in.json())["csrfToken"]
        listed = await client.get("/2025-09-09/microvms", headers={"X-Ember-Csrf": token})
        assert (listed.status, await listed.json()) == (200, {"items": []})


def test_the_static_files_ship_with_the_package() -> None:
    pyproject = (Path(__file__).parents[3] / "pyproject.toml").read_text()
    assert '"ember.console" = ["static/**/*"]' in pyproject
