"""Fixtures: the API application with the console installed, served by aiohttp's test server over a real store
(SQLite) with the API's fake services, a pinned clock, and a static directory of known files.

Two accounts exist: A and B (the keys of ``tests.unit.api.conftest``).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from ember.api.app import create_app as create_api_app
from ember.api.context import ApiContext
from ember.api.metrics import METRICS_CLOCK
from ember.api.testing import add_account, make_context
from ember.console.app import install
from ember.console.sessions import CSRF_HEADER, SessionStore
from ember.console.throttle import LoginThrottle
from ember.store import Store, create_engine, migrate
from tests.unit.api.conftest import ACCOUNT_A, ACCOUNT_B, KEY_A, KEY_B

__all__ = ["ACCOUNT_A", "ACCOUNT_B", "KEY_A", "KEY_B", "Clock", "Console"]

T0 = 1_757_419_200.0
"""2025-09-09T12:00:00Z: the pinned clock's start."""
STATIC_FILES = {
    "index.html": b"<!doctype html><title>Ember</title><script src=static/app.js></script>",
    "app.js": b"export const x = 1;\n",
    "app.css": b"body { margin: 0 }\n",
    "logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "icon.png": b"\x89PNG\r\n\x1a\n",
    "pages/list.js": b"export {};\n",
}


class Clock:
    """A settable clock (epoch seconds), advanced by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Console:
    """One served application: its store, clocks, sessions, throttle and an HTTP client (with a cookie jar)."""

    store: Store
    ctx: ApiContext
    client: TestClient[Any, Any]
    clock: Clock
    sessions: SessionStore
    throttle: LoginThrottle
    server: TestServer
    static_dir: Path

    async def sign_in(self, key: tuple[str, str] = KEY_A) -> dict[str, Any]:
        """Sign in with ``key``; the client's jar keeps the cookie. Returns the session body."""
        response = await self.client.post("/console/session", json={"accessKeyId": key[0], "secretAccessKey": key[1]})
        assert response.status == 200, await response.text()
        return await response.json()

    def browser(self) -> ClientSession:
        """Another browser: a session with its own empty cookie jar (closed with the fixture)."""
        session = ClientSession(base_url=str(self.server.make_url("/")), cookie_jar=CookieJar(unsafe=True))
        self._browsers.append(session)
        return session

    def __post_init__(self) -> None:
        self._browsers: list[ClientSession] = []


def csrf(body: dict[str, Any]) -> dict[str, str]:
    """The CSRF header of a session body."""
    return {CSRF_HEADER: body["csrfToken"]}


@pytest.fixture(scope="session")
def console_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-template") / "ember.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def console_store(tmp_path: Path, console_template_db: Path) -> Iterator[Store]:
    db = tmp_path / "ember.db"
    shutil.copy(console_template_db, db)
    store = Store.open(f"sqlite:///{db}", migrate=False)
    add_account(store, ACCOUNT_A, *KEY_A)
    add_account(store, ACCOUNT_B, *KEY_B)
    yield store
    store.close()


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    for name, data in STATIC_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (tmp_path / "secret.txt").write_text("outside the static directory")
    (root / ".hidden").write_text("hidden")
    return root


@pytest.fixture
async def console(console_store: Store, tmp_path: Path, static_dir: Path) -> AsyncIterator[Console]:
    clock = Clock()
    sessions = SessionStore(clock=clock)
    throttle = LoginThrottle(clock=clock)
    ctx = make_context(console_store, tmp_path / "images")
    app: web.Application = create_api_app(ctx)
    install(app, sessions=sessions, throttle=throttle, static_dir=static_dir)
    app[METRICS_CLOCK] = clock
    server = TestServer(app)
    client = TestClient(server)
    await client.start_server()
    console = Console(console_store, ctx, client, clock, sessions, throttle, server, static_dir)
    yield console
    for browser in console._browsers:
        await browser.close()
    await client.close()
