"""Fixtures: a gateway on 127.0.0.1 over TLS with Ember's generated CA, a FakeBackend, and real apps behind it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest

from ember.gateway import Gateway, mint_token
from ember.gateway.testing import FakeBackend, FakeVm

from .apps import HttpApp, WebSocketApp

APP_PORT = 8080
WS_PORT = 8081
DOWN_PORT = 9999
"""A guest port the fake maps to a local port nobody listens on: the app is not listening."""
T = 20.0
"""Per-operation timeout in these tests: a hang fails the test instead of the run."""


def vm_id(n: int) -> str:
    return f"mvm-{n:032x}"


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-tls")


@pytest.fixture(scope="session")
def client_ssl(tls_dir: Path) -> ssl.SSLContext:
    """A client context trusting only Ember's CA (created by the first gateway that starts)."""
    from ember.gateway.tls import GatewayCertificates, server_names

    GatewayCertificates(tls_dir, server_names(None, ["127.0.0.1"])).ensure()
    return ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))


@pytest.fixture
async def http_app() -> AsyncIterator[HttpApp]:
    app = HttpApp()
    await app.start()
    yield app
    await app.stop()


@pytest.fixture
async def ws_app() -> AsyncIterator[WebSocketApp]:
    app = WebSocketApp()
    await app.start()
    yield app
    await app.stop()


@pytest.fixture
async def backend() -> AsyncIterator[FakeBackend]:
    fake = FakeBackend()
    yield fake
    await fake.close()


@pytest.fixture
def unused_local_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def add_vm(backend: FakeBackend, http_app: HttpApp, ws_app: WebSocketApp,
           unused_local_port: int) -> Callable[..., FakeVm]:
    """Add a fake VM whose port 8080 is the HTTP app, 8081 the WebSocket app, 9999 nothing."""
    counter = iter(range(1, 1_000_000))

    def make(**fields: Any) -> FakeVm:
        ports = {APP_PORT: http_app.port, WS_PORT: ws_app.port, DOWN_PORT: unused_local_port}
        return backend.add_vm(vm_id(next(counter)), ports=ports, **fields)

    return make


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(backend: FakeBackend, tls_dir: Path,
                        client_ssl: ssl.SSLContext) -> AsyncIterator[GatewayFactory]:
    """Start gateways with the given settings on a free port; all are stopped after the test."""
    started: list[Gateway] = []

    async def start(**settings: Any) -> Gateway:
        settings.setdefault("tls_dir", tls_dir)
        gateway = Gateway(backend, **settings)
        await gateway.start("127.0.0.1", 0)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    return await start_gateway()


def token(backend: FakeBackend, vm: FakeVm, ports: list[dict[str, Any]] | None = None, *, minutes: int = 5,
          kind: str = "proxy", **kwargs: Any) -> str:
    parts = mint_token(backend.token_secret, vm.microvm_id, vm.account_id,
                       None if kind == "shell" else (ports or [{"allPorts": {}}]), minutes, kind,  # type: ignore[arg-type]
                       **kwargs)
    return parts["X-aws-proxy-auth"]


def base_url(gateway: Gateway, vm: FakeVm) -> str:
    return f"https://127.0.0.1:{gateway.port}/microvms/{vm.microvm_id}"


def client(client_ssl: ssl.SSLContext, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=client_ssl, timeout=T, **kwargs)


class RawClient:
    """One client connection driven by hand with h11, for what httpx would normalise away (dot segments,
    pipelining) or hide (which connection carried which request)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
        self._pipelined: list[tuple[str, str, list[tuple[str, str]]]] = []

    @classmethod
    async def open(cls, gateway: Gateway, client_ssl: ssl.SSLContext | None) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port, ssl=client_ssl,
                                                       server_hostname="127.0.0.1" if client_ssl else None)
        return cls(reader, writer)

    def send(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        self.writer.write(self._encode(self.conn, method, target, headers, body))

    def pipeline(self, requests: list[tuple[str, str, list[tuple[str, str]]]]) -> None:
        """Write several requests at once; then call :meth:`response` once per request, in order."""
        self.writer.write(b"".join(self._encode(h11.Connection(h11.CLIENT), *r) for r in requests))
        self._pipelined = list(requests)

    @staticmethod
    def _encode(conn: h11.Connection, method: str, target: str, headers: list[tuple[str, str]],
                body: bytes = b"") -> bytes:
        headers = [("host", "127.0.0.1"), *headers]
        if body:
            headers.append(("content-length", str(len(body))))
        data = conn.send(h11.Request(method=method, target=target, headers=headers))
        if body:
            data += conn.send(h11.Data(data=body))
        return data + conn.send(h11.EndOfMessage())

    async def response(self) -> tuple[h11.Response, bytes]:
        """The next response and its whole body; prepares the connection for the next cycle."""
        if self._pipelined and self.conn.our_state is h11.IDLE:
            self._encode(self.conn, *self._pipelined.pop(0))  # keep our h11 in step with what was written
        head, body = None, bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.PAUSED:
                raise AssertionError("response() called with no request outstanding")
            if event is h11.NEED_DATA:
                self.conn.receive_data(await asyncio.wait_for(self.reader.read(65536), T))
                continue
            if isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                return head, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed before a response")

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes = b"") -> tuple[h11.Response, bytes]:
        self.send(method, target, headers, body)
        return await self.response()

    async def at_eof(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), T) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


def header(response: h11.Response, name: str) -> str | None:
    for key, value in response.headers:
        if key.decode().lower() == name.lower():
            return value.decode()
    return None
