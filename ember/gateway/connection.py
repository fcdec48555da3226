"""One client connection: its socket, its h11 state machine, and raw access for tunnels.

Reads are at most ``READ_CHUNK_BYTES`` and every write waits for the socket to drain, so a slow
client holds the data source back instead of growing a buffer. The request head is capped by h11
(``max_header_bytes``: 431) and its first line by :meth:`next_event` (``max_request_line_bytes``: 414).
"""

from __future__ import annotations

import asyncio
import contextlib
import re

import h11

from .responses import Refusal, error_events

READ_CHUNK_BYTES = 64 * 1024
WRITE_HIGH_WATER_BYTES = 256 * 1024
MAX_DISCARD_BYTES = 64 * 1024
"""A refused request's body up to this size is read and dropped so the connection stays usable; beyond, it closes."""
DISCARD_TIMEOUT_S = 1.0
_HEAD_END = re.compile(rb"\n\r?\n")
"""Bytes the transport may queue before ``drain()`` blocks."""


class ClientConnection:
    """The gateway's side of one downstream HTTP/1.1 (possibly TLS) connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 max_header_bytes: int, max_request_line_bytes: int) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_bytes)
        self.max_header_bytes = max_header_bytes
        self.max_request_line_bytes = max_request_line_bytes
        self.tls = writer.get_extra_info("sslcontext") is not None
        peer = writer.get_extra_info("peername")
        self.client_ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER_BYTES)

    @property
    def scheme(self) -> str:
        """``https`` or ``http``, as the app sees it in ``X-Forwarded-Proto``."""
        return "https" if self.tls else "http"

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        """The next h11 event, reading from the socket as needed (h11.RemoteProtocolError on bad input)."""
        while True:
            if self.h11.their_state is h11.IDLE:
                self._check_head()
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            self.h11.receive_data(await self.reader.read(READ_CHUNK_BYTES))

    async def send(self, event: h11.Event) -> None:
        """Send one h11 event and wait until the socket takes it."""
        data = self.h11.send(event)
        if data:
            await self.write(data)

    async def write(self, data: bytes) -> None:
        """Raw bytes to the client, waiting while its socket is backed up."""
        self.writer.write(data)
        await self.writer.drain()

    async def read_raw(self) -> bytes:
        """Bytes past the HTTP layer (after a 101); b"" at EOF."""
        return await self.reader.read(READ_CHUNK_BYTES)

    async def wait_until_gone(self) -> None:
        """Return when the client closes its side while a response is under way.

        Without this a client that leaves a quiet stream (SSE, a long poll) would go unnoticed until the app
        next writes, keeping the VM awake. Bytes that arrive meanwhile (a pipelined request) are handed to h11
        for the next cycle; past ``max_header_bytes`` of them, reading pauses and only a failed write tells.
        """
        while len(self.h11.trailing_data[0]) <= self.max_header_bytes:
            data = await self.reader.read(READ_CHUNK_BYTES)
            if not data:
                return
            self.h11.receive_data(data)
        await asyncio.Future()  # never: the owner cancels this when the response ends

    @property
    def response_started(self) -> bool:
        """Whether a final response head went out (after that, an error can only cut the connection)."""
        return self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE)

    @property
    def reusable(self) -> bool:
        """Whether another request may follow on this connection (both sides finished cleanly)."""
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    async def refuse(self, refusal: Refusal, request_id: str) -> None:
        """Answer with the gateway's JSON error; closes the connection afterwards if a request body is unread."""
        if self.response_started or self.h11.our_state is h11.ERROR:
            return
        close = not await self._discard_request_body()
        for event in error_events(refusal, request_id, close=close):
            await self.send(event)

    async def _discard_request_body(self) -> bool:
        """Read and drop a small request body so the connection can serve the next request; False if it can't."""
        if self.h11.their_state is h11.DONE:
            return True
        if self.h11.their_state is not h11.SEND_BODY or self.h11.client_is_waiting_for_100_continue:
            return False
        dropped = 0
        try:
            async with asyncio.timeout(DISCARD_TIMEOUT_S):
                while dropped <= MAX_DISCARD_BYTES:
                    event = await self.next_event()
                    if isinstance(event, h11.EndOfMessage):
                        return True
                    if not isinstance(event, h11.Data):
                        return False
                    dropped += len(event.data)
        except (TimeoutError, h11.RemoteProtocolError, OSError):
            pass
        return False

    async def close(self) -> None:
        """Close the socket (idempotent, never raises)."""
        if self.writer.is_closing():
            return
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)

    def abort(self) -> None:
        """Drop the connection without a goodbye (after a response was cut off midway)."""
        self.writer.transport.abort()

    def _check_head(self) -> None:
        """Enforce both caps on the head still in the buffer (h11's own cap only fires while a head is incomplete,
        so a large head that arrives in one read would slip past it)."""
        buffered, _ = self.h11.trailing_data
        head = buffered.lstrip(b"\r\n")
        line_end = head.find(b"\n")
        if (line_end if line_end != -1 else len(head)) > self.max_request_line_bytes:
            raise Refusal(414, "request_line_too_long",
                          f"the request line is longer than {self.max_request_line_bytes} bytes")
        head_end = _HEAD_END.search(head)
        if (head_end.start() if head_end else len(head)) > self.max_header_bytes:
            raise Refusal(431, "headers_too_large", f"the request head is larger than {self.max_header_bytes} bytes")
