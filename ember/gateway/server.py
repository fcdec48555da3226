"""The gateway server: accepts client connections and runs each request through auth, state and forwarding.

Per request, in order: parse the head (h11; size caps) -> resolve the MicroVM (host or path prefix) ->
refuse dot segments and hook paths -> check the token -> look the VM up -> rate limit -> mark the
connection open -> wait until the VM is RUNNING (holding the request through PENDING or an
auto-resume) -> shell, or open an agent stream to the app's port and relay the exchange. Every
refusal is a :class:`~ember.gateway.responses.Refusal` answered in one place (``_handle``).

Each connection is a task the Gateway owns: ``stop()`` cancels and awaits them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h11

from ember.errors import AgentOpError

from . import cors, proxy, routing, shell, websocket
from . import headers as hdr
from .backend import GatewayBackend, Unavailable
from .connection import READ_CHUNK_BYTES, ClientConnection
from .ratelimit import RateLimiter
from .responses import SERVER_HEADER, Refusal
from .tls import GatewayCertificates, server_names
from .tokens import TOKEN_HEADER, Kind, TokenRefused, verify_token

log = logging.getLogger("ember.gateway")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9443
DEFAULT_APP_PORT = 8080
"""The app port when a request names none (CONTRACT §3)."""
PORT_HEADER = "X-aws-proxy-port"
DEFAULT_START_TIMEOUT_S = 60.0
"""How long a request is held while its VM starts or resumes; a restore takes seconds even under TCG."""
DEFAULT_HEAD_TIMEOUT_S = 30.0
"""How long a connection may take to deliver a complete request head, idle keep-alive time included."""
TLS_HANDSHAKE_TIMEOUT_S = 10.0
DEFAULT_RATE_LIMIT_PER_S = 100.0
"""Requests per second per MicroVM, sustained (the managed service's limit is unpublished)."""
DEFAULT_RATE_LIMIT_BURST = 200
MAX_HEADER_BYTES = 16 * 1024
"""Request line plus headers; more is 431."""
MAX_REQUEST_LINE_BYTES = 8 * 1024
"""Method, target and version; more is 414."""


class Gateway:
    """The data-plane server: one per Ember process, serving every MicroVM's endpoint."""

    def __init__(self, backend: GatewayBackend, *, tls_dir: Path | None = None, plain_http: bool = False,
                 domain: str | None = None, tls_names: Sequence[str] = (),
                 start_timeout_s: float = DEFAULT_START_TIMEOUT_S, head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S,
                 rate_limit_per_s: float | None = DEFAULT_RATE_LIMIT_PER_S,
                 rate_limit_burst: int = DEFAULT_RATE_LIMIT_BURST, max_header_bytes: int = MAX_HEADER_BYTES,
                 max_request_line_bytes: int = MAX_REQUEST_LINE_BYTES, default_app_port: int = DEFAULT_APP_PORT,
                 clock: Callable[[], float] = time.time) -> None:
        """``tls_dir`` holds the CA and server certificate (required unless ``plain_http``); ``domain`` turns on
        host routing (``{id}.{domain}``); ``rate_limit_per_s=None`` turns rate limiting off; ``clock`` is the
        wall clock tokens are checked against.
        """
        if not plain_http and tls_dir is None:
            raise ValueError("tls_dir is required unless plain_http=True")
        self.backend = backend
        self.tls_dir = Path(tls_dir) if tls_dir is not None else None
        self.plain_http = plain_http
        self.domain = domain.strip(".").lower() if domain else None
        self.tls_names = list(tls_names)
        self.start_timeout_s = start_timeout_s
        self.head_timeout_s = head_timeout_s
        self.max_header_bytes = max_header_bytes
        self.max_request_line_bytes = max_request_line_bytes
        self.default_app_port = default_app_port
        self._clock = clock
        self._limiter = RateLimiter(rate_limit_per_s, rate_limit_burst) if rate_limit_per_s else None
        self._server: asyncio.Server | None = None
        self._certificates: GatewayCertificates | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.host = DEFAULT_HOST
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the bound port."""
        if self._server is not None:
            raise RuntimeError("the gateway is already started")
        ssl_ctx = None
        if not self.plain_http:
            assert self.tls_dir is not None
            self._certificates = GatewayCertificates(self.tls_dir, server_names(self.domain, [host, *self.tls_names]))
            await asyncio.to_thread(self._certificates.ensure)
            ssl_ctx = self._certificates.ssl_context()
        self._stopping = False
        self._server = await asyncio.start_server(
            self._serve_connection, host, port, ssl=ssl_ctx,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if ssl_ctx else None, limit=2 * READ_CHUNK_BYTES)
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("gateway listening", extra={"action": "gateway_start", "host": host, "port": self.port,
                                             "tls": ssl_ctx is not None})
        return self.port

    async def stop(self) -> None:
        """Stop listening, end every open connection and wait for their tasks (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5.0)
        log.info("gateway stopped", extra={"action": "gateway_stop", "port": self.port})

    @property
    def ca_path(self) -> Path | None:
        """The CA bundle clients should trust (None for plain HTTP)."""
        return self._certificates.ca_path() if self._certificates else None

    @property
    def open_connections(self) -> int:
        """Client connections currently being served."""
        return len(self._connections)

    def endpoint(self, microvm_id: str) -> str:
        """The MicroVM's endpoint as the API returns it (no scheme)."""
        return routing.endpoint_for(microvm_id, self.host, self.port, self.domain)

    # -- connections -----------------------------------------------------------------------------------------
    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._stopping or task is None:
            writer.close()
            return
        self._connections.add(task)
        client = ClientConnection(reader, writer, max_header_bytes=self.max_header_bytes,
                                  max_request_line_bytes=self.max_request_line_bytes)
        try:
            await self._serve_requests(client)
        except (proxy.ClientGone, *proxy.STREAM_ERRORS) as exc:
            log.debug("connection dropped", extra={"action": "connection_dropped", "error": str(exc)})
            client.abort()
        except Exception:
            log.exception("gateway bug: connection failed", extra={"action": "connection_failed"})
            client.abort()
        except asyncio.CancelledError:
            # Only stop() cancels connections. Ending normally spares asyncio (3.11) logging the cancellation of a
            # client_connected_cb task as an error.
            client.abort()
        finally:
            self._connections.discard(task)
            await client.close()

    async def _serve_requests(self, client: ClientConnection) -> None:
        while True:
            request_id = str(uuid.uuid4())
            try:
                async with asyncio.timeout(self.head_timeout_s):
                    event = await client.next_event()
            except TimeoutError:
                return
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                code = "headers_too_large" if status == 431 else "bad_request"
                await self._refuse(client, Refusal(status, code, f"malformed HTTP request: {exc}"), request_id, None)
                return
            except Refusal as refusal:
                await self._refuse(client, refusal, request_id, None)
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed, or PAUSED after a protocol switch
            await self._handle(client, event, request_id)
            if not client.reusable:
                return
            client.h11.start_next_cycle()

    async def _handle(self, client: ClientConnection, request: h11.Request, request_id: str) -> None:
        started = time.monotonic()
        context: dict[str, Any] = {"request_id": request_id, "method": request.method.decode("latin-1"),
                                   "microvm_id": None}
        try:
            status = await self._dispatch(client, request, request_id, context)
        except Refusal as refusal:
            await self._refuse(client, refusal, request_id, context)
            return
        except (proxy.ClientGone, *proxy.STREAM_ERRORS, asyncio.CancelledError):
            raise  # the exchange broke midway: the connection is dropped
        except Exception as exc:
            log.exception("gateway bug while handling a request", extra={"action": "request_failed", **context})
            await self._refuse(client, Refusal(500, "internal_error", f"gateway error: {type(exc).__name__}"),
                               request_id, None)
            return
        log.debug("request forwarded", extra={"action": "request", "status": status,
                                              "duration_ms": round((time.monotonic() - started) * 1000, 1),
                                              **context})

    async def _refuse(self, client: ClientConnection, refusal: Refusal, request_id: str,
                      context: dict[str, Any] | None) -> None:
        level = logging.WARNING if refusal.status >= 500 else logging.INFO
        log.log(level, "request refused: %s", refusal.message,
                extra={"action": "request_refused", "status": refusal.status, "code": refusal.code,
                       **(context or {"request_id": request_id})})
        if client.response_started:
            client.abort()  # the app's response was already under way: cutting it off is the only signal left
            return
        if context and context.get("cors_origin"):
            refusal.headers += cors.response_headers(context["cors_origin"])  # the token was valid
        with contextlib.suppress(OSError, h11.LocalProtocolError):
            await client.refuse(refusal, request_id)

    # -- one request -----------------------------------------------------------------------------------------
    async def _dispatch(self, client: ClientConnection, request: h11.Request, request_id: str,
                        context: dict[str, Any]) -> int:
        if request.method == b"CONNECT":
            raise Refusal(405, "method_not_allowed", "CONNECT is not supported", [(b"allow", b"GET, POST, PUT, "
                                                                                   b"PATCH, DELETE, HEAD, OPTIONS")])
        headers = list(request.headers)
        route = routing.resolve(_first(headers, b"host"), request.target.decode("latin-1"), self.domain)
        context["microvm_id"] = route.microvm_id
        if routing.is_hook_path(route.path):
            raise Refusal(403, "hook_path", "hook paths (/aws/lambda-microvms/runtime/) are only for the platform")
        preflight = cors.preflight(request.method, headers)
        if preflight is not None:
            return await self._answer_preflight(client, preflight, request_id)
        upgrade = websocket.is_upgrade(headers)
        offer = websocket.split_subprotocols(headers) if upgrade else websocket.Subprotocols()
        is_shell = route.path.rstrip("/") == routing.SHELL_PATH
        token = offer.token or _first(headers, TOKEN_HEADER.lower().encode())
        kind: Kind = "shell" if is_shell else "proxy"
        port = None if is_shell else self._port(offer.port or _first(headers, PORT_HEADER.lower().encode()))
        context["port"] = port
        try:
            claims = verify_token(self.backend.token_secret, token, route.microvm_id, port, kind, now=self._clock())
        except TokenRefused as exc:
            raise Refusal(403, exc.code, exc.reason) from None
        context["cors_origin"] = cors_origin = cors.origin_of(headers)
        self._rate_limit(route.microvm_id)
        target = self.backend.lookup(route.microvm_id)
        if target is None or target.state == "TERMINATED":
            raise Refusal(404, "microvm_not_found", f"MicroVM {route.microvm_id} does not exist or has terminated")
        if target.account_id != claims.account_id:
            raise Refusal(403, "token_account", "token was minted by another account")
        if target.state == "SUSPENDED" and not target.auto_resume:
            raise Refusal(502, "microvm_suspended", f"MicroVM {route.microvm_id} is SUSPENDED and auto-resume is off: "
                                                    "call ResumeMicrovm first")
        if is_shell and not target.shell_ingress:
            raise Refusal(403, "shell_not_enabled", "this MicroVM was run without the SHELL_INGRESS connector")
        if is_shell and not upgrade:
            raise Refusal(426, "websocket_required", "the shell is a WebSocket: send an Upgrade request",
                          [(b"upgrade", b"websocket")])
        self.backend.connection_opened(route.microvm_id)
        try:
            agent = await self._ensure_running(route.microvm_id)
            if client.h11.client_is_waiting_for_100_continue:
                await client.send(h11.InformationalResponse(status_code=100, headers=[]))
            if is_shell:
                return await shell.serve_shell(client, agent, request, request_id=request_id,
                                               offered_marker=offer.marker, microvm_id=route.microvm_id)
            assert port is not None
            app_headers = hdr.to_app(headers, request_id=request_id, client_ip=client.client_ip,
                                     scheme=client.scheme, prefix=route.prefix, upgrade=upgrade,
                                     app_subprotocols=offer.app)
            stream = await self._open_stream(agent, route.microvm_id, port)
            try:
                return await proxy.forward(client, stream, request.method, route.target.encode("latin-1"),
                                           app_headers, request_id=request_id, upgrade=upgrade,
                                           add_marker=offer.marker, cors_origin=cors_origin)
            finally:
                with contextlib.suppress(Exception):
                    await stream.close()
        finally:
            self.backend.connection_closed(route.microvm_id)

    async def _answer_preflight(self, client: ClientConnection, headers: cors.Headers, request_id: str) -> int:
        """204 to a CORS preflight (``cors.preflight`` made sure it has no body); the app never sees it."""
        event = await client.next_event()
        if not isinstance(event, h11.EndOfMessage):
            raise Refusal(400, "bad_request", "a CORS preflight has no body")
        await client.send(h11.Response(status_code=204, headers=[
            *headers, (b"x-amzn-requestid", request_id.encode("latin-1")), (b"server", SERVER_HEADER)]))
        await client.send(h11.EndOfMessage())
        return 204

    def _port(self, raw: str | None) -> int:
        if raw is None:
            return self.default_app_port
        try:
            port = int(raw.strip())
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            raise Refusal(400, "bad_port", f"{PORT_HEADER} must be an integer between 1 and 65535")
        return port

    def _rate_limit(self, microvm_id: str) -> None:
        if self._limiter is None:
            return
        wait_s = self._limiter.acquire(microvm_id)
        if wait_s > 0:
            raise Refusal(429, "rate_limited",
                          f"more than {self._limiter.rate_per_s:g} requests/s (burst {self._limiter.burst}) "
                          f"for this MicroVM; retry later",
                          [(b"retry-after", RateLimiter.retry_after_header(wait_s).encode())])

    async def _ensure_running(self, microvm_id: str) -> Any:
        try:
            return await self.backend.ensure_running(microvm_id, self.start_timeout_s)
        except Unavailable as exc:
            code = "microvm_not_found" if exc.status == 404 else "microvm_unavailable"
            raise Refusal(exc.status, code, exc.reason) from None
        except TimeoutError:
            raise Refusal(502, "start_timeout", f"MicroVM {microvm_id} did not become RUNNING within "
                                                f"{self.start_timeout_s:g} s; retry") from None
        except proxy.STREAM_ERRORS as exc:
            raise Refusal(502, "agent_unreachable", f"cannot reach MicroVM {microvm_id}: {exc}") from None

    async def _open_stream(self, agent: Any, microvm_id: str, port: int) -> Any:
        try:
            return await agent.open_stream(port)
        except AgentOpError as exc:
            if exc.code == "ECONNREFUSED":
                raise Refusal(502, "app_not_listening",
                              f"nothing is listening on port {port} in MicroVM {microvm_id}") from None
            raise Refusal(502, "app_unreachable", f"cannot connect to port {port} in MicroVM {microvm_id}: "
                                                  f"{exc.code}") from None
        except proxy.STREAM_ERRORS as exc:
            raise Refusal(502, "agent_unreachable", f"cannot reach MicroVM {microvm_id}: {exc}") from None


def _first(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None
