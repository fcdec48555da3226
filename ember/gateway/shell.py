"""The shell endpoint: a WebSocket at ``{endpoint}/.ember/shell`` bridged to a login shell on a PTY in the guest.

Frames (CONTRACT §10): binary frames carry PTY bytes both ways; a text frame ``{"resize": [cols, rows]}``
resizes the terminal; any other text frame is typed into the PTY as UTF-8 (terminal widgets that only
send text work too). When the shell exits the gateway closes the WebSocket with 1000 and the reason
``exit <code>``. Closing the WebSocket kills the shell's process group. WebSocket framing is wsproto's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import h11
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from ember.errors import AgentError

from .connection import ClientConnection
from .proxy import STREAM_ERRORS
from .responses import REQUEST_ID_HEADER, Refusal
from .websocket import MARKER, accept_key

log = logging.getLogger("ember.gateway")

SHELL_ARGV = ["/bin/sh", "-c", "if [ -x /bin/bash ]; then exec /bin/bash -l; else exec /bin/sh -l; fi"]
"""bash when the image has it, else sh; both as login shells (one spawn, no probing round trip)."""
SHELL_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
             "TERM": "xterm-256color", "LANG": "C.UTF-8"}
SHELL_PTY = (80, 24)
"""Initial (cols, rows); the client resizes at once if its terminal differs."""
MAX_PTY_DIMENSION = 4096
MAX_TEXT_MESSAGE_CHARS = 64 * 1024
"""A text message longer than this closes the WebSocket with 1009 (message too big)."""
CLOSE_HANDSHAKE_TIMEOUT_S = 2.0
"""After the shell exits, how long to wait for the client's close frame before dropping the connection."""
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011


async def serve_shell(client: ClientConnection, agent: Any, request: h11.Request, *, request_id: str,
                      offered_marker: bool, microvm_id: str) -> int:
    """Upgrade the request, spawn the shell and bridge them until either ends; returns 101."""
    accept = accept_key(list(request.headers))
    if accept is None:
        raise Refusal(400, "bad_websocket", "not a valid WebSocket handshake (need Sec-WebSocket-Key and version 13)")
    try:
        proc = await agent.spawn(SHELL_ARGV, env=SHELL_ENV, pty=SHELL_PTY, stdin=True)
    except STREAM_ERRORS as exc:
        raise Refusal(502, "shell_failed", f"could not start a shell in the MicroVM: {exc}") from None
    try:
        headers = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade"), (b"sec-websocket-accept", accept),
                   (REQUEST_ID_HEADER, request_id.encode())]
        if offered_marker:
            headers.append((b"sec-websocket-protocol", MARKER.encode()))
        await client.send(h11.InformationalResponse(status_code=101, headers=headers))
        log.info("shell opened", extra={"action": "shell_open", "microvm_id": microvm_id, "request_id": request_id})
        ws = Connection(ConnectionType.SERVER, trailing_data=client.h11.trailing_data[0])
        bridge = _ShellBridge(client, proc, ws)
        await bridge.run()
        log.info("shell closed", extra={"action": "shell_closed", "microvm_id": microvm_id,
                                        "request_id": request_id, "exit_code": proc.exit_code})
    finally:
        with contextlib.suppress(Exception):
            await proc.kill()
    return 101


class _ShellBridge:
    """Moves frames between one WebSocket and one PTY process."""

    def __init__(self, client: ClientConnection, proc: Any, ws: Connection) -> None:
        self.client = client
        self.proc = proc
        self.ws = ws
        self._text: list[str] = []
        self._text_chars = 0

    async def run(self) -> None:
        inbound = asyncio.create_task(self._from_client(), name="gateway-shell-in")
        outbound = asyncio.create_task(self._from_process(), name="gateway-shell-out")
        try:
            done, _ = await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
            if outbound in done and not inbound.done():
                # The shell ended and we sent our close frame: give the client a moment to answer it.
                await asyncio.wait({inbound}, timeout=CLOSE_HANDSHAKE_TIMEOUT_S)
        finally:
            for task in (inbound, outbound):
                task.cancel()
            await asyncio.gather(inbound, outbound, return_exceptions=True)

    async def _from_client(self) -> None:
        if await self._handle_events():
            return
        while True:
            data = await self.client.read_raw()
            self.ws.receive_data(data or None)
            if await self._handle_events() or not data:
                return

    async def _handle_events(self) -> bool:
        """Act on buffered frames; True once the WebSocket is closed."""
        for event in self.ws.events():
            if isinstance(event, BytesMessage):
                await self.proc.write(bytes(event.data))
            elif isinstance(event, TextMessage):
                self._text.append(event.data)
                self._text_chars += len(event.data)
                if self._text_chars > MAX_TEXT_MESSAGE_CHARS:
                    await self._send(CloseConnection(code=CLOSE_TOO_BIG, reason="text message too big"))
                    return True
                if event.message_finished:
                    text, self._text, self._text_chars = "".join(self._text), [], 0
                    await self._on_text(text)
            elif isinstance(event, Ping):
                await self._send(event.response())
            elif isinstance(event, CloseConnection):
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    await self._send(event.response())
                return True
        return False

    async def _on_text(self, text: str) -> None:
        control = _control_message(text)
        if control is None or "resize" not in control:
            await self.proc.write(text.encode())
            return
        size = _pty_size(control["resize"])
        if size is None:
            log.info("ignored a bad resize request", extra={"action": "shell_bad_resize"})
        else:
            await self.proc.resize(*size)

    async def _from_process(self) -> None:
        code, reason = 1000, "exit"
        try:
            async for _fd, data in self.proc.events():
                await self._send(BytesMessage(data=data))
            reason = f"exit {self.proc.exit_code}" if self.proc.exit_code is not None else f"signal {self.proc.signal}"
        except AgentError as exc:
            code, reason = CLOSE_INTERNAL_ERROR, "lost the shell"
            log.warning("shell stream failed", extra={"action": "shell_error", "error": str(exc)})
        await self._send(CloseConnection(code=code, reason=reason))

    async def _send(self, event: Event) -> None:
        if self.ws.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return
        try:
            data = self.ws.send(event)
        except LocalProtocolError:
            return
        await self.client.write(data)


def _control_message(text: str) -> dict[str, Any] | None:
    """``text`` as a JSON object, or None when it is anything else (then it is typed input)."""
    if not text.startswith("{"):
        return None
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def _pty_size(value: Any) -> tuple[int, int] | None:
    """(cols, rows) from ``[cols, rows]`` when both are integers in 1..MAX_PTY_DIMENSION."""
    if not (isinstance(value, list) and len(value) == 2):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_PTY_DIMENSION for v in value):
        return None
    return value[0], value[1]
