"""Forwarding one HTTP exchange to the app over an agent stream, and WebSocket upgrades as byte tunnels.

Each request gets its own agent stream (one TCP connection inside the guest) and is sent with
``Connection: close``; h11 parses the app's response so the gateway knows where it ends, then the
client connection is free for its next request (keep-alive) whatever the app does with its side.
Bodies flow as they arrive, in both directions and concurrently (an app may answer before it has
read the whole upload); nothing holds more than one read chunk per direction, so memory stays flat
however large the body. A ``101 Switching Protocols`` from the app turns the exchange into a raw
bidirectional splice until either side closes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import h11

from ember.errors import AgentError
from ember.guest.protocol import ChannelClosed

from . import cors
from . import headers as hdr
from .connection import ClientConnection
from .responses import Refusal

log = logging.getLogger("ember.gateway")

STREAM_ERRORS: tuple[type[Exception], ...] = (AgentError, ChannelClosed, OSError)
"""What writing to an agent stream or process may raise: the agent client translates most failures into
AgentError, but a channel that closed under a write surfaces as the protocol's ChannelClosed."""
MAX_APP_HEAD_BYTES = 64 * 1024
"""A response head larger than this from the app is a 502 (apps set big cookies; 16 KiB is too tight)."""


class AppStream(Protocol):
    """A byte stream to the app's port (``ember.host.agent_client.Stream`` or a test fake)."""

    async def write(self, data: bytes) -> None: ...
    async def write_eof(self) -> None: ...
    async def read(self) -> bytes: ...
    async def close(self) -> None: ...


class ClientGone(Exception):
    """The client went away or broke HTTP framing mid-exchange; the connection is dropped."""


async def forward(client: ClientConnection, stream: AppStream, method: bytes, target: bytes, app_headers: hdr.Headers,
                  *, request_id: str, upgrade: bool, add_marker: bool, cors_origin: str | None = None) -> int:
    """Relay a request (head already parsed, body still on the socket) to the app; the status it answered.

    ``cors_origin`` (a verified request from a browser page) adds CORS headers to the response (``cors.py``).

    Raises Refusal(502) when the app gives no usable response before anything was sent to the client,
    and ClientGone when the client vanished or the response was cut off midway.
    """
    app = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_APP_HEAD_BYTES)
    try:
        await _to_app(stream, app, h11.Request(method=method, target=target, headers=app_headers))
    except STREAM_ERRORS as exc:
        raise Refusal(502, "app_closed", f"the app's connection failed before the request was sent: {exc}") from None
    upload = asyncio.create_task(_upload(client, stream, app), name="gateway-upload")
    download = asyncio.create_task(_download(client, stream, app, request_id=request_id, upgrade=upgrade,
                                             add_marker=add_marker, upload=upload, cors_origin=cors_origin),
                                   name="gateway-download")
    watch: asyncio.Task[None] | None = None
    try:
        while not download.done():
            # Only unfinished tasks: a finished upload left in the set would make every wait return at once.
            waiting = {t for t in (upload, download, watch) if t is not None and not t.done()}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if download.done():
                break
            if upload.done() and upload.exception() is not None:
                raise upload.exception()  # type: ignore[misc]
            if watch is not None and watch.done():
                raise ClientGone("client left while the response was streaming")
            if upload.done() and watch is None and not upgrade:
                # Request fully read: from now on a read from the client can only mean it left (or pipelined).
                watch = asyncio.create_task(client.wait_until_gone(), name="gateway-client-watch")
        return download.result()
    finally:
        # A response that ended before its request body leaves the rest of the body on the socket:
        # h11 then reports the connection as not reusable and the server closes it.
        tasks = [t for t in (download, upload, watch) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _to_app(stream: AppStream, app: h11.Connection, event: h11.Event) -> None:
    data = app.send(event)
    if data:
        await stream.write(data)


async def _upload(client: ClientConnection, stream: AppStream, app: h11.Connection) -> None:
    """Client request body -> app, chunk by chunk, until its end (h11 decodes and re-encodes the framing)."""
    app_alive = True
    while True:
        try:
            event = await client.next_event()
        except (h11.RemoteProtocolError, OSError) as exc:
            raise ClientGone(f"request body: {exc}") from None
        if isinstance(event, h11.ConnectionClosed):
            raise ClientGone("client closed the connection mid-body")
        if not isinstance(event, h11.Data | h11.EndOfMessage):
            raise ClientGone(f"unexpected {type(event).__name__} in the request body")
        if app_alive:
            try:
                await _to_app(stream, app, h11.EndOfMessage() if isinstance(event, h11.EndOfMessage) else event)
            except (*STREAM_ERRORS, h11.LocalProtocolError):
                # The app stopped reading (it may already be answering): keep draining the client's body so
                # the connection stays usable, and let the response tell the story.
                app_alive = False
        if isinstance(event, h11.EndOfMessage):
            return


async def _download(client: ClientConnection, stream: AppStream, app: h11.Connection, *, request_id: str,
                    upgrade: bool, add_marker: bool, upload: asyncio.Task[None],
                    cors_origin: str | None = None) -> int:
    """App response -> client; returns its status. A 101 becomes a tunnel before returning."""
    status = 0
    received = 0
    while True:
        try:
            event = app.next_event()
        except h11.RemoteProtocolError as exc:
            if client.response_started:
                raise ClientGone(f"app response broken midway: {exc}") from None
            if not received:
                raise Refusal(502, "app_closed", "the app closed the connection without answering") from None
            raise Refusal(502, "bad_app_response", f"the app sent an invalid HTTP response: {exc}") from None
        if event is h11.PAUSED:  # the app switched protocols without being asked: nothing more to relay
            raise ClientGone("the app switched protocols unasked")
        if event is h11.NEED_DATA:
            try:
                data = await stream.read()
            except AgentError as exc:
                data = b""
                log.debug("agent stream ended", extra={"action": "agent_stream_error", "error": str(exc)})
            received += len(data)
            app.receive_data(data)
            continue
        if isinstance(event, h11.InformationalResponse):
            if event.status_code == 101 and upgrade:
                await _switch(client, stream, app, event, request_id=request_id, add_marker=add_marker,
                              upload=upload)
                return 101
            if event.status_code != 100 and client.h11.their_http_version == b"1.1":
                await _send(client, h11.InformationalResponse(status_code=event.status_code,
                                                              headers=hdr.to_client(list(event.headers), request_id)))
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = cors.add_to_response(hdr.to_client(list(event.headers), request_id), cors_origin)
            await _send(client, h11.Response(status_code=status, reason=event.reason, headers=headers))
        elif isinstance(event, h11.Data):
            await _send(client, h11.Data(data=event.data))
        elif isinstance(event, h11.EndOfMessage):
            await _send(client, h11.EndOfMessage())  # trailers are dropped (docs/gateway.md)
            return status
        elif isinstance(event, h11.ConnectionClosed):
            raise Refusal(502, "app_closed", "the app closed the connection without answering")


async def _send(client: ClientConnection, event: h11.Event) -> None:
    try:
        await client.send(event)
    except (OSError, h11.LocalProtocolError) as exc:
        raise ClientGone(f"sending the response: {exc}") from None


async def _switch(client: ClientConnection, stream: AppStream, app: h11.Connection, event: h11.InformationalResponse, *,
                  request_id: str, add_marker: bool, upload: asyncio.Task[None]) -> None:
    """Accept the upgrade towards the client, then splice bytes until both sides are done."""
    await upload  # an upgrade request has no body: its EndOfMessage came right after the head
    headers = hdr.switching_to_client(list(event.headers), request_id, add_marker)
    await _send(client, h11.InformationalResponse(status_code=101, headers=headers))
    from_client, _ = client.h11.trailing_data
    from_app, _ = app.trailing_data
    if from_client:
        await stream.write(from_client)
    if from_app:
        await client.write(from_app)
    await splice(client, stream)


async def splice(client: ClientConnection, stream: AppStream) -> None:
    """Copy bytes both ways until both directions have ended (or either side fails)."""

    async def client_to_app() -> None:
        while data := await client.read_raw():
            await stream.write(data)
        await stream.write_eof()

    async def app_to_client() -> None:
        while data := await stream.read():
            await client.write(data)
        if client.writer.can_write_eof():
            client.writer.write_eof()
        else:
            raise EOFError("TLS cannot half-close: the tunnel ends with the app's side")

    tasks = [asyncio.create_task(client_to_app(), name="gateway-tunnel-up"),
             asyncio.create_task(app_to_client(), name="gateway-tunnel-down")]
    try:
        pending: set[asyncio.Task[None]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(t.exception() is not None for t in done):
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
