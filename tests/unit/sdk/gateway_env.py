"""Ember's real gateway (TLS with its generated CA) over the fake backend and local apps, in a thread of its own,
plus fake API routes that mint real tokens for it, so the sync SDK and the CLI can be tested against it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from ember.gateway import Gateway, mint_token
from ember.gateway.testing import FakeBackend, FakeVm
from tests.unit.gateway.apps import HttpApp, WebSocketApp

from . import samples
from .fakes import FakeServer, Recorded, Reply

APP_PORT = 8080
WS_PORT = 8081


class GatewayThread:
    """A Gateway, its FakeBackend and two apps on an event loop in a thread (the sync SDK blocks this one)."""

    def __init__(self, tls_dir: Path) -> None:
        self.tls_dir = tls_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gateway", daemon=True)
        self.backend: FakeBackend
        self.gateway: Gateway
        self.http_app = HttpApp()
        self.ws_app = WebSocketApp()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def __enter__(self) -> GatewayThread:
        self.thread.start()

        async def start() -> None:
            self.backend = FakeBackend()
            await self.http_app.start()
            await self.ws_app.start()
            self.gateway = Gateway(self.backend, tls_dir=self.tls_dir)
            await self.gateway.start("127.0.0.1", 0)

        self.run(start())
        return self

    def add_vm(self, n: int, **fields: Any) -> FakeVm:
        async def add() -> FakeVm:
            return self.backend.add_vm(samples.vm_id(n), ports={APP_PORT: self.http_app.port,
                                                                WS_PORT: self.ws_app.port}, **fields)

        return self.run(add())

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            await self.gateway.stop()
            await self.http_app.stop()
            await self.ws_app.stop()
            await self.backend.close()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def api_for(server: FakeServer, gw: GatewayThread, vm: FakeVm) -> None:
    """Fake API routes for ``vm``: its detail (endpoint on the gateway) and real tokens from the backend's key."""
    endpoint = f"127.0.0.1:{gw.gateway.port}"
    base = f"/2025-09-09/microvms/{vm.microvm_id}"
    server.route("GET", base, Reply(200, samples.microvm(vm.microvm_id, endpoint=endpoint)))

    def proxy_token(request: Recorded) -> Reply:
        body = request.json()
        parts = mint_token(gw.backend.token_secret, vm.microvm_id, vm.account_id, body["allowedPorts"],
                           body["expirationInMinutes"])
        return Reply(200, {"authToken": parts})

    def shell_token(request: Recorded) -> Reply:
        parts = mint_token(gw.backend.token_secret, vm.microvm_id, vm.account_id, None,
                           request.json()["expirationInMinutes"], "shell")
        return Reply(200, {"authToken": parts})

    server.route("POST", base + "/auth-token", proxy_token)
    server.route("POST", base + "/shell-auth-token", shell_token)
