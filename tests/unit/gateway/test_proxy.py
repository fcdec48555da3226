"""Relaying exchanges over real sockets: keep-alive, streamed bodies both ways, SSE, WebSocket tunnels."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ember.gateway import Gateway
from ember.gateway.testing import FakeBackend, FakeVm

from .apps import BLOCK, HttpApp, WebSocketApp, pattern_digest
from .conftest import WS_PORT, GatewayFactory, RawClient, base_url, client, header, token

pytestmark = pytest.mark.timeout(120)
AddVm = Callable[..., FakeVm]
BIG_BYTES = 100 * 1024 * 1024
MAX_RSS_GROWTH_BYTES = 50 * 1024 * 1024


def auth(backend: FakeBackend, vm: FakeVm) -> list[tuple[str, str]]:
    return [("X-aws-proxy-auth", token(backend, vm))]


# -- keep-alive ----------------------------------------------------------------------------------------------------
async def test_two_requests_on_one_connection(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                              client_ssl: ssl.SSLContext, http_app: HttpApp) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        first, body1 = await raw.request("GET", f"/microvms/{vm.microvm_id}/one", auth(backend, vm))
        second, body2 = await raw.request("POST", f"/microvms/{vm.microvm_id}/echo", auth(backend, vm), b"hello")
    finally:
        await raw.close()
    assert (first.status_code, json.loads(body1)["target"]) == (200, "/one")
    assert (second.status_code, body2) == (200, b"hello")
    assert header(first, "connection") is None  # the app's "Connection: close" stays between gateway and app
    assert vm.streams_opened == 2  # one agent stream per request, one client connection for both


async def test_pipelined_requests_are_answered_in_order(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                        client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        raw.pipeline([("GET", f"/microvms/{vm.microvm_id}/{name}", auth(backend, vm)) for name in "abc"])
        targets = [json.loads((await raw.response())[1])["target"] for _ in range(3)]
    finally:
        await raw.close()
    assert targets == ["/a", "/b", "/c"]


async def test_refusal_keeps_the_connection_when_no_body_is_pending(gateway: Gateway, backend: FakeBackend,
                                                                    add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        refused, _ = await raw.request("GET", f"/microvms/{vm.microvm_id}/", [])
        served, _ = await raw.request("GET", f"/microvms/{vm.microvm_id}/", auth(backend, vm))
    finally:
        await raw.close()
    assert (refused.status_code, served.status_code) == (403, 200)


async def test_refusal_with_an_unread_body_closes_the_connection(gateway: Gateway, add_vm: AddVm,
                                                                  client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        raw.writer.write(f"POST /microvms/{vm.microvm_id}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                         .encode())
        response, _ = await raw.response()
        assert (response.status_code, header(response, "connection")) == (403, "close")
        assert await raw.at_eof()
    finally:
        await raw.close()


# -- bodies --------------------------------------------------------------------------------------------------------
async def test_chunked_request_body_arrives_intact(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                   client_ssl: ssl.SSLContext, http_app: HttpApp) -> None:
    vm = add_vm()
    pieces = [b"a" * 10, b"", b"b" * 70_000, b"c"]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async with client(client_ssl) as c:
        response = await c.post(f"{base_url(gateway, vm)}/upload", content=body(), headers=dict(auth(backend, vm)))
    assert response.json() == {"bytes": 70_011, "sha256": hashlib.sha256(b"".join(pieces)).hexdigest()}
    seen = dict(http_app.requests[-1]["headers"])
    assert seen["transfer-encoding"] == "chunked" and "content-length" not in seen


async def test_expect_100_continue_is_answered_by_the_gateway(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                              client_ssl: ssl.SSLContext, http_app: HttpApp) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        raw.writer.write(f"POST /microvms/{vm.microvm_id}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                         f"Expect: 100-continue\r\nX-aws-proxy-auth: {token(backend, vm)}\r\n\r\n".encode())
        interim = await asyncio.wait_for(raw.reader.readuntil(b"\r\n\r\n"), 10)
        assert interim.startswith(b"HTTP/1.1 100 ")
        raw.writer.write(b"hello")
        rest = await asyncio.wait_for(raw.reader.readuntil(b"hello"), 10)
        assert rest.startswith(b"HTTP/1.1 200 ")
    finally:
        await raw.close()
    assert "expect" not in dict(http_app.requests[-1]["headers"])


async def test_head_and_close_delimited_responses_are_framed_for_the_client(
        gateway: Gateway, backend: FakeBackend, add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        head, body = await raw.request("HEAD", f"/microvms/{vm.microvm_id}/download?bytes=1000", auth(backend, vm))
        assert (head.status_code, header(head, "content-length"), body) == (200, "1000", b"")
        until_close, body = await raw.request("GET", f"/microvms/{vm.microvm_id}/close-delimited", auth(backend, vm))
        assert (header(until_close, "transfer-encoding"), body) == ("chunked", b"until close")
        again, _ = await raw.request("GET", f"/microvms/{vm.microvm_id}/", auth(backend, vm))
        assert again.status_code == 200  # the app closing its side did not close ours
    finally:
        await raw.close()


def rss_bytes(field: str = "VmRSS") -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    assert match, field
    return int(match.group(1)) * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM (Linux: write 5 to clear_refs); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssWatch:
    """Peak RSS of this process (gateway, client and app all run in it) during a block, as growth over the start."""

    def __init__(self) -> None:
        self.start = 0
        self.peak = 0
        self._sampler: asyncio.Task[None] | None = None
        self._hwm = False

    async def __aenter__(self) -> RssWatch:
        self.start = self.peak = rss_bytes()
        self._hwm = reset_peak_rss()
        self._sampler = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes())
            await asyncio.sleep(0.02)

    async def __aexit__(self, *exc: object) -> None:
        assert self._sampler is not None
        self._sampler.cancel()
        await asyncio.gather(self._sampler, return_exceptions=True)
        self.peak = max(self.peak, rss_bytes("VmHWM") if self._hwm else 0, rss_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.start


async def test_100_mib_upload_streams_with_flat_memory(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                       client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    headers = {**dict(auth(backend, vm)), "content-length": str(BIG_BYTES)}

    async def body() -> AsyncIterator[bytes]:
        for _ in range(BIG_BYTES // len(BLOCK)):
            yield BLOCK

    async with client(client_ssl) as c:
        await c.post(f"{base_url(gateway, vm)}/upload", content=BLOCK, headers=dict(auth(backend, vm)))  # warm up
        async with RssWatch() as rss:
            started = time.perf_counter()
            response = await c.post(f"{base_url(gateway, vm)}/upload", content=body(), headers=headers)
            elapsed = time.perf_counter() - started
    assert response.json() == {"bytes": BIG_BYTES, "sha256": pattern_digest(BIG_BYTES)}
    print(f"\nupload 100 MiB: {BIG_BYTES / elapsed / 2**20:.0f} MiB/s, RSS growth {rss.growth / 2**20:.1f} MiB")
    assert rss.growth < MAX_RSS_GROWTH_BYTES


async def test_100_mib_download_streams_with_flat_memory(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                         client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    async with client(client_ssl) as c:
        await c.get(f"{base_url(gateway, vm)}/download?bytes=65536", headers=dict(auth(backend, vm)))  # warm up
        digest, size = hashlib.sha256(), 0
        async with RssWatch() as rss:
            started = time.perf_counter()
            async with c.stream("GET", f"{base_url(gateway, vm)}/download?bytes={BIG_BYTES}",
                                headers=dict(auth(backend, vm))) as response:
                assert response.headers["content-length"] == str(BIG_BYTES)
                async for chunk in response.aiter_raw():
                    digest.update(chunk)
                    size += len(chunk)
            elapsed = time.perf_counter() - started
    assert (size, digest.hexdigest()) == (BIG_BYTES, pattern_digest(BIG_BYTES))
    print(f"\ndownload 100 MiB: {BIG_BYTES / elapsed / 2**20:.0f} MiB/s, RSS growth {rss.growth / 2**20:.1f} MiB")
    assert rss.growth < MAX_RSS_GROWTH_BYTES


# -- server-sent events --------------------------------------------------------------------------------------------
async def test_sse_delivers_100_events_in_order(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    async with client(client_ssl) as c, c.stream("GET", f"{base_url(gateway, vm)}/sse?n=100",
                                                 headers=dict(auth(backend, vm))) as response:
        assert response.headers["content-type"] == "text/event-stream"
        data = [line[len("data: "):] async for line in response.aiter_lines() if line.startswith("data: ")]
    assert data == [f"event {i}" for i in range(100)]


async def test_sse_events_are_not_held_back_and_keep_the_vm_open(gateway: Gateway, backend: FakeBackend,
                                                                 add_vm: AddVm, client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    async with client(client_ssl) as c, c.stream("GET", f"{base_url(gateway, vm)}/sse-wait",
                                                 headers=dict(auth(backend, vm))) as response:
        # The app sent one event and is waiting: it must arrive now, not when the stream ends.
        assert await asyncio.wait_for(anext(response.aiter_lines()), 5) == "data: first"
        assert backend.open_now[vm.microvm_id] == 1
    for _ in range(100):
        if backend.open_now[vm.microvm_id] == 0:
            break
        await asyncio.sleep(0.02)
    assert backend.open_now[vm.microvm_id] == 0


# -- WebSocket -------------------------------------------------------------------------------------------------------
def ws_url(gateway: Gateway, vm: FakeVm) -> str:
    return f"wss://127.0.0.1:{gateway.port}/microvms/{vm.microvm_id}/ws"


async def test_websocket_echo_with_token_and_port_as_subprotocols(gateway: Gateway, backend: FakeBackend,
                                                                  add_vm: AddVm, client_ssl: ssl.SSLContext,
                                                                  ws_app: WebSocketApp) -> None:
    vm = add_vm()
    protocols = ["chat", "lambda-microvms", f"lambda-microvms.authentication.{token(backend, vm)}",
                 f"lambda-microvms.port.{WS_PORT}"]
    async with connect(ws_url(gateway, vm), ssl=client_ssl, subprotocols=protocols,  # type: ignore[arg-type]
                       open_timeout=10) as ws:
        assert ws.subprotocol == "chat"
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01" * 50_000)
        assert await ws.recv() == b"\x00\x01" * 50_000
        assert backend.open_now[vm.microvm_id] == 1  # an open WebSocket keeps the VM awake
    assert ws_app.offered == [["chat"]]  # Ember's entries never reach the app
    assert ws_app.headers[0]["x-amzn-requestid"]


async def test_websocket_without_app_subprotocols_gets_the_marker(gateway: Gateway, backend: FakeBackend,
                                                                  add_vm: AddVm, client_ssl: ssl.SSLContext,
                                                                  ws_app: WebSocketApp) -> None:
    vm = add_vm()
    protocols = ["lambda-microvms", f"lambda-microvms.authentication.{token(backend, vm)}",
                 f"lambda-microvms.port.{WS_PORT}"]
    async with connect(ws_url(gateway, vm), ssl=client_ssl, subprotocols=protocols,  # type: ignore[arg-type]
                       open_timeout=10) as ws:
        assert ws.subprotocol == "lambda-microvms"  # a browser would fail the handshake without one
        await ws.send("ping?")
        assert await ws.recv() == "ping?"
    assert ws_app.offered == [[]]


async def test_websocket_with_header_token(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                           client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    headers = {"X-aws-proxy-auth": token(backend, vm), "X-aws-proxy-port": str(WS_PORT)}
    async with connect(ws_url(gateway, vm), ssl=client_ssl, additional_headers=headers, subprotocols=["chat"],  # type: ignore[list-item]
                       open_timeout=10) as ws:
        await ws.send("x")
        assert await ws.recv() == "x"


async def test_websocket_with_a_bad_token_is_403(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                 client_ssl: ssl.SSLContext) -> None:
    vm = add_vm()
    protocols = ["lambda-microvms", "lambda-microvms.authentication.ember1.forged.token",
                 f"lambda-microvms.port.{WS_PORT}"]
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(gateway, vm), ssl=client_ssl, subprotocols=protocols,  # type: ignore[arg-type]
                           open_timeout=10):
            pass
    assert info.value.response.status_code == 403


async def test_upgrade_the_app_declines_is_an_ordinary_response(gateway: Gateway, backend: FakeBackend, add_vm: AddVm,
                                                                client_ssl: ssl.SSLContext) -> None:
    # The HTTP app answers upgrades with 200: the client connection stays HTTP and usable.
    vm = add_vm()
    raw = await RawClient.open(gateway, client_ssl)
    try:
        headers = [*auth(backend, vm), ("connection", "Upgrade"), ("upgrade", "websocket"),
                   ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="), ("sec-websocket-version", "13")]
        declined, _ = await raw.request("GET", f"/microvms/{vm.microvm_id}/", headers)
        assert declined.status_code == 200
        again, _ = await raw.request("GET", f"/microvms/{vm.microvm_id}/", auth(backend, vm))
        assert again.status_code == 200
    finally:
        await raw.close()


async def test_throughput_is_reported(start_gateway: GatewayFactory, backend: FakeBackend, add_vm: AddVm,
                                      client_ssl: ssl.SSLContext) -> None:
    """Small-request rate over one keep-alive connection (printed with -s; asserted only loosely)."""
    gateway = await start_gateway(rate_limit_per_s=None)
    vm = add_vm()
    count = 200
    async with client(client_ssl, limits=httpx.Limits(max_connections=1)) as c:
        started = time.perf_counter()
        for _ in range(count):
            assert (await c.get(f"{base_url(gateway, vm)}/", headers=dict(auth(backend, vm)))).status_code == 200
        elapsed = time.perf_counter() - started
    print(f"\n{count} sequential requests: {count / elapsed:.0f} requests/s")
    assert elapsed < 30


async def test_tunnel_carries_early_bytes_and_half_closes_over_plain_http(start_gateway: GatewayFactory,
                                                                         backend: FakeBackend, add_vm: AddVm) -> None:
    """A raw upgrade: bytes sent right behind the request head reach the app, and EOF travels both ways."""
    gateway = await start_gateway(plain_http=True, tls_dir=None)
    vm = add_vm()

    async def upgrade_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        writer.write(b"BYE")
        writer.close()

    server = await asyncio.start_server(upgrade_echo, "127.0.0.1", 0)
    vm.ports[7000] = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(f"GET /microvms/{vm.microvm_id}/raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     f"Upgrade: websocket\r\nX-aws-proxy-port: 7000\r\nX-aws-proxy-auth: {token(backend, vm)}\r\n"
                     f"\r\nearly bytes ".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101 ")
        writer.write(b"and late ones")
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 10) == b"EARLY BYTES AND LATE ONESBYE"
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
    for _ in range(100):
        if backend.open_now[vm.microvm_id] == 0:
            break
        await asyncio.sleep(0.02)
    assert backend.open_now[vm.microvm_id] == 0
