"""Apps the gateway tests put behind the fake agent: a small h11 HTTP app and a WebSocket echo app.

They run on 127.0.0.1 in the test process and stand in for the app inside a MicroVM. Every body is
streamed (never held whole), so the 100 MiB tests measure the gateway, not the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
from websockets.asyncio.server import Server, ServerConnection, serve

BLOCK = bytes(range(256)) * 256
"""64 KiB of a known pattern: downloads repeat it, uploads in the tests send it."""


def pattern_digest(total_bytes: int) -> str:
    """sha256 of ``total_bytes`` of the repeated BLOCK pattern."""
    digest = hashlib.sha256()
    full, rest = divmod(total_bytes, len(BLOCK))
    for _ in range(full):
        digest.update(BLOCK)
    digest.update(BLOCK[:rest])
    return digest.hexdigest()


class HttpApp:
    """One request per connection is enough (the gateway sends ``Connection: close``), but keep-alive works too."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = await self._next(conn, reader)
                if not isinstance(event, h11.Request):
                    return
                await self._route(conn, reader, writer, event)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.RemoteProtocolError, asyncio.CancelledError):
            return  # cancelled by stop(); ending normally keeps asyncio from logging it as an error
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _next(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await reader.read(65536))

    async def _body(self, conn: h11.Connection, reader: asyncio.StreamReader):  # type: ignore[no-untyped-def]
        while True:
            event = await self._next(conn, reader)
            if isinstance(event, h11.Data):
                yield event.data
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise h11.RemoteProtocolError(f"unexpected {event!r}")

    async def _route(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     req: h11.Request) -> None:
        target = req.target.decode()
        url = urlsplit(target)
        query = parse_qs(url.query)
        headers = [[k.decode(), v.decode()] for k, v in req.headers]
        self.requests.append({"method": req.method.decode(), "target": target, "headers": headers})

        async def send(event: h11.Event) -> None:
            writer.write(conn.send(event))
            await writer.drain()

        async def answer(status: int, body: bytes, content_type: str = "application/json") -> None:
            await send(h11.Response(status_code=status, headers=[("content-type", content_type),
                                                                  ("content-length", str(len(body)))]))
            if body:
                await send(h11.Data(data=body))
            await send(h11.EndOfMessage())

        if url.path == "/upload":
            digest, size = hashlib.sha256(), 0
            async for chunk in self._body(conn, reader):
                digest.update(chunk)
                size += len(chunk)
            await answer(200, json.dumps({"bytes": size, "sha256": digest.hexdigest()}).encode())
        elif url.path == "/echo":
            body = b"".join([chunk async for chunk in self._body(conn, reader)])
            await answer(200, body, "application/octet-stream")
        elif url.path == "/download":
            total = int(query["bytes"][0])
            await send(h11.Response(status_code=200, headers=[("content-type", "application/octet-stream"),
                                                              ("content-length", str(total))]))
            sent = total if req.method == b"HEAD" else 0
            while sent < total:
                piece = BLOCK[: min(len(BLOCK), total - sent)]
                await send(h11.Data(data=piece))
                sent += len(piece)
            await send(h11.EndOfMessage())
        elif url.path == "/sse":
            count = int(query.get("n", ["100"])[0])
            await send(h11.Response(status_code=200, headers=[("content-type", "text/event-stream"),
                                                              ("cache-control", "no-cache")]))
            for i in range(count):
                await send(h11.Data(data=f"id: {i}\ndata: event {i}\n\n".encode()))
                await asyncio.sleep(0.001)
            await send(h11.EndOfMessage())
        elif url.path == "/sse-wait":
            # One event, then silence until the client leaves: shows events are not held back.
            await send(h11.Response(status_code=200, headers=[("content-type", "text/event-stream")]))
            await send(h11.Data(data=b"data: first\n\n"))
            await reader.read(1)
            await send(h11.EndOfMessage())
        elif url.path == "/close-delimited":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil close")
            await writer.drain()
            writer.close()
            raise ConnectionResetError("done")
        elif url.path == "/hang-up":
            raise ConnectionResetError("the app hangs up without answering")
        else:
            drained = 0
            async for chunk in self._body(conn, reader):
                drained += len(chunk)
            await answer(200, json.dumps({"method": req.method.decode(), "target": target, "headers": headers,
                                          "body_bytes": drained}).encode())


class WebSocketApp:
    """Echoes every message; speaks the ``chat`` subprotocol and records what subprotocols it was offered."""

    def __init__(self) -> None:
        self.offered: list[list[str]] = []
        self.headers: list[dict[str, str]] = []
        self._server: Server | None = None
        self.port = 0

    async def start(self) -> int:
        def record(connection: ServerConnection, request: Any) -> None:
            self.offered.append(request.headers.get_all("Sec-WebSocket-Protocol"))
            self.headers.append({k.lower(): v for k, v in request.headers.raw_items()})

        def select(connection: ServerConnection, offered: Any) -> Any:
            return "chat" if "chat" in offered else None

        self._server = await serve(self._echo, "127.0.0.1", 0, select_subprotocol=select, process_request=record)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @staticmethod
    async def _echo(ws: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            async for message in ws:
                await ws.send(message)
