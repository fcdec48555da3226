"""A MicroVM handle: its lifecycle calls, and requests and WebSockets to its endpoint through the gateway.

``Microvm`` (sync) and ``AsyncMicrovm`` wrap one MicroVM id and its client. Requests go to
``{scheme}://{endpoint}{path}`` with the cached token headers (``X-aws-proxy-auth``) and
``X-aws-proxy-port``, trust the gateway's CA, and are retried as ``ember.sdk.tokens.RetryPolicy`` says
(502 while resuming, 429 with ``Retry-After``, one re-mint on 401/403). WebSockets use the
``websockets`` library with the same headers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from ember.contract import MicrovmDetail

from .errors import ConnectionFailed
from .logs import LogLine
from .tokens import DEFAULT_PORT, PORT_HEADER

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection as AsyncWebSocket
    from websockets.sync.client import ClientConnection as WebSocket

    from .client import AsyncClient, Client

SHELL_PATH = "/.ember/shell"
"""The shell WebSocket of every endpoint (CONTRACT §10)."""
WS_OPEN_TIMEOUT_S = 75.0
"""WebSocket handshake timeout: long enough for the gateway to hold the upgrade while the VM resumes."""


def _body(json_body: Any, content: bytes | str | None) -> tuple[bytes | None, dict[str, str]]:
    if json_body is not None:
        import json

        return json.dumps(json_body).encode(), {"Content-Type": "application/json"}
    if isinstance(content, str):
        return content.encode(), {}
    return content, {}


def _connect_failed(exc: Exception, url: str) -> ConnectionFailed:
    hint = " (trust the gateway CA: `ember ca` prints its path)" if "CERTIFICATE" in str(exc).upper() else ""
    return ConnectionFailed(f"cannot reach the MicroVM endpoint {url}: {exc}{hint}", url=url)


def _ws_status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


class _HandleBase:
    id: str
    detail: MicrovmDetail | None

    def _url(self, endpoint: str, scheme: str, path: str) -> str:
        if not path.startswith("/"):
            path = "/" + path
        return f"{scheme}://{endpoint.rstrip('/')}{path}"

    def __repr__(self) -> str:
        state = self.detail.state if self.detail is not None else "?"
        return f"<{type(self).__name__} {self.id} {state}>"


class Microvm(_HandleBase):
    """One MicroVM: ``request``/``websocket``/``shell`` reach its endpoint; the rest are API calls."""

    def __init__(self, client: Client, microvm_id: str, detail: MicrovmDetail | None = None) -> None:
        self.client = client
        self.id = microvm_id
        self.detail = detail

    def refresh(self) -> MicrovmDetail:
        """GetMicrovm: the current detail (also kept in ``detail``)."""
        self.detail = self.client.microvms.get(self.id)
        return self.detail

    @property
    def endpoint(self) -> str:
        """The endpoint as the API returns it (no scheme), e.g. ``127.0.0.1:9443/microvms/mvm-…``."""
        return (self.detail or self.refresh()).endpoint

    def url(self, path: str = "/") -> str:
        """The full URL of ``path`` on this MicroVM's endpoint."""
        return self._url(self.endpoint, self.client.gateway_scheme, path)

    def auth_headers(self, port: int = DEFAULT_PORT) -> dict[str, str]:
        """The token headers for ``port`` (cached; minted when missing or 80% through its lifetime)."""
        cached = self.client.tokens.get(self.id, port)
        if cached is not None:
            return cached
        minutes = self.client.token_minutes
        headers = self.client.microvms.token(self.id, port=port, minutes=minutes)
        self.client.tokens.put(self.id, port, headers, minutes)
        return headers

    def request(self, method: str, path: str = "/", *, json: Any = None, content: bytes | str | None = None,
                params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                port: int = DEFAULT_PORT, timeout: float | None = None) -> httpx.Response:
        """Send one request to the app on ``port``; returns the app's response (after the retries)."""
        body, extra = _body(json, content)
        url = self.url(path)
        policy = self.client.retry
        started, attempt, reminted = time.monotonic(), 0, False
        while True:
            attempt += 1
            sent = {**extra, **(headers or {}), **self.auth_headers(port), PORT_HEADER: str(port)}
            try:
                response = self.client.data_http.request(
                    method, url, content=body, params=params, headers=sent,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
            except httpx.TransportError as exc:
                raise _connect_failed(exc, url) from None
            delay = policy.delay(response.status_code, dict(response.headers), response.content, attempt=attempt,
                                 waited_s=time.monotonic() - started, reminted=reminted)
            if delay is None:
                return response
            if response.status_code in (401, 403):
                self.client.tokens.drop(self.id, port)
                reminted = True
            time.sleep(delay)

    def websocket(self, path: str = "/", *, port: int = DEFAULT_PORT, subprotocols: list[str] | None = None,
                  **kwargs: Any) -> WebSocket:
        """A WebSocket to ``path`` on the app's ``port`` (``websockets.sync.client.ClientConnection``)."""
        return self._websocket(path, lambda: {**self.auth_headers(port), PORT_HEADER: str(port)},
                               lambda: self.client.tokens.drop(self.id, port), subprotocols, kwargs)

    def shell(self, **kwargs: Any) -> WebSocket:
        """The shell WebSocket (needs a MicroVM run with ``shell=True``): binary frames are PTY bytes."""
        return self._websocket(SHELL_PATH, lambda: self.client.microvms.shell_token(self.id), lambda: None, None,
                               kwargs)

    def _websocket(self, path: str, auth: Any, drop: Any, subprotocols: list[str] | None,
                   kwargs: dict[str, Any]) -> WebSocket:
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect

        url = self.url(path).replace("http", "ws", 1)
        ssl = self.client.gateway_ssl() if url.startswith("wss:") else None
        kwargs.setdefault("open_timeout", WS_OPEN_TIMEOUT_S)
        started, attempt, reminted = time.monotonic(), 0, False
        while True:
            attempt += 1
            try:
                # legacy=True: return the open connection itself (callers may still use it in a ``with``)
                return connect(url, additional_headers=auth(), subprotocols=subprotocols,  # type: ignore[arg-type]
                               ssl=ssl, legacy=True, **kwargs)
            except InvalidStatus as exc:
                status = _ws_status(exc) or 0
                body = getattr(exc.response, "body", b"") or b""
                delay = self.client.retry.delay(status, dict(exc.response.headers), body, attempt=attempt,
                                                waited_s=time.monotonic() - started, reminted=reminted)
                if delay is None:
                    raise
                if status in (401, 403):
                    drop()
                    reminted = True
                time.sleep(delay)
            except OSError as exc:
                raise _connect_failed(exc, url) from None

    # -- API calls on this MicroVM ------------------------------------------------------------------------------
    def suspend(self) -> None:
        """SuspendMicrovm."""
        self.client.microvms.suspend(self.id)

    def resume(self) -> None:
        """ResumeMicrovm."""
        self.client.microvms.resume(self.id)

    def terminate(self) -> None:
        """TerminateMicrovm (and forget its tokens)."""
        self.client.microvms.terminate(self.id)
        self.client.tokens.drop(self.id)

    def logs(self, *, follow: bool = False, since: int = 0) -> Iterator[LogLine]:
        """The app's stdout/stderr lines."""
        return self.client.microvms.logs(self.id, follow=follow, since=since)

    def wait_for_state(self, *states: str, timeout: float = 300.0, **kwargs: Any) -> MicrovmDetail:
        """Poll until the MicroVM is in one of ``states`` (default RUNNING)."""
        self.detail = self.client.microvms.wait_for_state(self.id, *states, timeout=timeout, **kwargs)
        return self.detail


class AsyncMicrovm(_HandleBase):
    """The async twin of ``Microvm``."""

    def __init__(self, client: AsyncClient, microvm_id: str, detail: MicrovmDetail | None = None) -> None:
        self.client = client
        self.id = microvm_id
        self.detail = detail

    async def refresh(self) -> MicrovmDetail:
        """GetMicrovm: the current detail (also kept in ``detail``)."""
        self.detail = await self.client.microvms.get(self.id)
        return self.detail

    async def url(self, path: str = "/") -> str:
        """The full URL of ``path`` on this MicroVM's endpoint."""
        detail = self.detail or await self.refresh()
        return self._url(detail.endpoint, self.client.gateway_scheme, path)

    async def auth_headers(self, port: int = DEFAULT_PORT) -> dict[str, str]:
        """The token headers for ``port`` (cached; minted when missing or 80% through its lifetime)."""
        cached = self.client.tokens.get(self.id, port)
        if cached is not None:
            return cached
        minutes = self.client.token_minutes
        headers = await self.client.microvms.token(self.id, port=port, minutes=minutes)
        self.client.tokens.put(self.id, port, headers, minutes)
        return headers

    async def request(self, method: str, path: str = "/", *, json: Any = None, content: bytes | str | None = None,
                      params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                      port: int = DEFAULT_PORT, timeout: float | None = None) -> httpx.Response:
        """Send one request to the app on ``port``; returns the app's response (after the retries)."""
        body, extra = _body(json, content)
        url = await self.url(path)
        policy = self.client.retry
        started, attempt, reminted = time.monotonic(), 0, False
        while True:
            attempt += 1
            sent = {**extra, **(headers or {}), **await self.auth_headers(port), PORT_HEADER: str(port)}
            try:
                response = await self.client.data_http.request(
                    method, url, content=body, params=params, headers=sent,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
            except httpx.TransportError as exc:
                raise _connect_failed(exc, url) from None
            delay = policy.delay(response.status_code, dict(response.headers), response.content, attempt=attempt,
                                 waited_s=time.monotonic() - started, reminted=reminted)
            if delay is None:
                return response
            if response.status_code in (401, 403):
                self.client.tokens.drop(self.id, port)
                reminted = True
            await asyncio.sleep(delay)

    async def websocket(self, path: str = "/", *, port: int = DEFAULT_PORT, subprotocols: list[str] | None = None,
                        **kwargs: Any) -> AsyncWebSocket:
        """A WebSocket to ``path`` on the app's ``port`` (``websockets.asyncio.client.ClientConnection``)."""
        from websockets.asyncio.client import connect

        url = (await self.url(path)).replace("http", "ws", 1)
        ssl = self.client.gateway_ssl() if url.startswith("wss:") else None
        headers = {**await self.auth_headers(port), PORT_HEADER: str(port)}
        try:
            kwargs.setdefault("open_timeout", WS_OPEN_TIMEOUT_S)
            return await connect(url, additional_headers=headers, subprotocols=subprotocols,  # type: ignore[arg-type]
                                 ssl=ssl, **kwargs)
        except OSError as exc:
            raise _connect_failed(exc, url) from None

    async def shell(self, **kwargs: Any) -> AsyncWebSocket:
        """The shell WebSocket (needs a MicroVM run with ``shell=True``): binary frames are PTY bytes."""
        from websockets.asyncio.client import connect

        url = (await self.url(SHELL_PATH)).replace("http", "ws", 1)
        ssl = self.client.gateway_ssl() if url.startswith("wss:") else None
        headers = await self.client.microvms.shell_token(self.id)
        kwargs.setdefault("open_timeout", WS_OPEN_TIMEOUT_S)
        try:
            return await connect(url, additional_headers=headers, ssl=ssl, **kwargs)
        except OSError as exc:
            raise _connect_failed(exc, url) from None

    async def suspend(self) -> None:
        """SuspendMicrovm."""
        await self.client.microvms.suspend(self.id)

    async def resume(self) -> None:
        """ResumeMicrovm."""
        await self.client.microvms.resume(self.id)

    async def terminate(self) -> None:
        """TerminateMicrovm (and forget its tokens)."""
        await self.client.microvms.terminate(self.id)
        self.client.tokens.drop(self.id)

    def logs(self, *, follow: bool = False, since: int = 0) -> AsyncIterator[LogLine]:
        """The app's stdout/stderr lines."""
        return self.client.microvms.logs(self.id, follow=follow, since=since)

    async def wait_for_state(self, *states: str, timeout: float = 300.0, **kwargs: Any) -> MicrovmDetail:
        """Poll until the MicroVM is in one of ``states`` (default RUNNING)."""
        self.detail = await self.client.microvms.wait_for_state(self.id, *states, timeout=timeout, **kwargs)
        return self.detail
