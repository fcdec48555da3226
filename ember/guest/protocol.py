"""The agent wire protocol: frames, channels and flow control over one byte stream.

Both ends import this module: the agent inside the guest (on the runtime disk's
Python, so stdlib only) and the host's agent client. One virtio-serial port is a
single byte stream, so every operation runs on its own *channel* multiplexed
over it.

Frame (big-endian, 14-byte header)::

    magic b"EM" | version u8 | type u8 | channel u32 | flags u16 | length u32 | payload

Frame types:

- ``HELLO`` (channel 0): the host opens a session; the agent drops every channel
  of an earlier session (after a restore the host's side of them is gone) and
  answers ``HELLO`` with ``{"protocol", "agent", "boot_id"}``.
- ``OPEN``: the host opens channel N (N >= 1, never reused while open) with JSON
  ``{"op": name, ...arguments}``. Only the host opens channels.
- ``MSG``: a JSON control message on a channel, either way.
- ``DATA``: bytes; ``flags`` is the fd (0 = stdin or stream, 1 = stdout, 2 = stderr).
- ``EOF``: no more ``DATA`` on fd ``flags`` from the sender (a half-close).
- ``WINDOW``: payload u32; the receiver of DATA grants that many more bytes.
  Each direction of each channel starts with ``INITIAL_WINDOW_BYTES`` of credit,
  so a slow reader holds back a fast writer instead of filling memory.
- ``CLOSE``: the sender is finished with the channel; JSON payload optional.
- ``ERROR``: JSON ``{"code", "message"}``; ends the channel. On channel 0 it
  reports a frame the peer could not decode; the connection goes on.

Operations (arguments -> the agent's messages), each on its own channel:

- ``ping`` -> MSG ``{"pong": true, "time_ns"}``, CLOSE.
- ``version`` -> MSG ``{"protocol", "agent"}``, CLOSE.
- ``exec`` ``{argv, env?, cwd?, uid?, gid?, stdin?: bool, pty?: {cols, rows}, root?: "rootfs"|"runtime"}``
  -> MSG ``{"pid"}``; DATA fd 1/2 (a PTY sends everything on fd 1); the host sends
  DATA fd 0 (stdin), EOF fd 0, MSG ``{"signal": n}``, MSG ``{"resize": [cols, rows]}``;
  the agent ends with EOF 1, EOF 2, MSG ``{"exit": code|null, "signal": n|null}``, CLOSE.
  A CLOSE from the host kills the process group.
- ``stream`` ``{port, host?}`` -> MSG ``{"connected": true}``; DATA/EOF fd 0 both
  ways; the agent sends CLOSE once both directions reached EOF.
- ``file_put`` ``{path, mode?, uid?, gid?, root?}`` -> MSG ``{"ready": true}``; the host
  sends DATA fd 0 then EOF fd 0; the file is written to a temporary name and renamed
  -> MSG ``{"size"}``, CLOSE.
- ``file_get`` ``{path, root?}`` -> MSG ``{"size", "mode"}``, DATA fd 1, EOF fd 1, CLOSE.
- ``clock_set`` ``{realtime_ns}`` -> MSG ``{"previous_ns"}``, CLOSE.
- ``entropy_add`` ``{data}`` (base64) -> MSG ``{"bits"}``, CLOSE (adds and reseeds the CRNG).
- ``app_start`` ``{argv, env?, cwd?, uid?, gid?}`` -> MSG ``{"pid"}``, CLOSE.
- ``app_stop`` ``{signal?, timeout_s?}`` -> MSG ``{"exit", "signal"}``, CLOSE.
- ``app_status`` -> MSG ``{"running", "pid", "exit", "signal", "log_seq"}``, CLOSE.
- ``app_logs`` ``{since?, follow?}`` -> MSG ``{"seq", "time_ns", "stream", "line"}`` per line,
  then CLOSE unless following.

Errors carry ``code``: ``bad_frame``, ``unknown_op``, ``bad_args``, ``busy``,
``not_found`` or an errno name (``ENOENT``, ``ECONNREFUSED``...).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

PROTOCOL_VERSION = 1
MAGIC = b"EM"
HEADER = struct.Struct(">2sBBIHI")
HEADER_BYTES = HEADER.size

HELLO, OPEN, MSG, DATA, EOF, WINDOW, CLOSE, ERROR = range(1, 9)
FRAME_NAMES = {HELLO: "HELLO", OPEN: "OPEN", MSG: "MSG", DATA: "DATA", EOF: "EOF",
               WINDOW: "WINDOW", CLOSE: "CLOSE", ERROR: "ERROR"}

# A JSON message larger than this is refused: it bounds what a hostile peer can make us buffer.
MAX_PAYLOAD_BYTES = 1 << 20
# DATA is cut into chunks of at most this size so channels interleave fairly.
MAX_DATA_CHUNK_BYTES = 64 * 1024
# Credit each side grants per channel before it must see a WINDOW frame.
INITIAL_WINDOW_BYTES = 512 * 1024
# Highest channel id; ids are u32 on the wire.
MAX_CHANNEL_ID = 2**32 - 1

FD_STREAM, FD_STDOUT, FD_STDERR = 0, 1, 2


class ProtocolError(Exception):
    """The peer sent something this protocol does not allow."""


class ChannelError(Exception):
    """The peer ended a channel with an ERROR frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ChannelClosed(Exception):
    """The channel (or the whole connection) ended before the expected message."""


class Frame(NamedTuple):
    """One decoded frame."""

    type: int
    channel: int
    flags: int
    payload: bytes

    def json(self) -> dict[str, Any]:
        """The payload as a JSON object (ProtocolError when it is not one)."""
        return decode_json(self.payload)


def encode_frame(type_: int, channel: int, flags: int = 0, payload: bytes = b"") -> bytes:
    """Serialise one frame."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return HEADER.pack(MAGIC, PROTOCOL_VERSION, type_, channel, flags, len(payload)) + payload


def encode_json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def decode_json(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload.decode() if payload else "{}")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("payload is not a JSON object")
    return obj


class FrameDecoder:
    """Incremental decoder: feed bytes, get frames.

    A header with the wrong magic, version or an oversized length is counted in
    ``errors`` and skipped by scanning for the next magic, so a torn frame (a
    snapshot taken mid-write, line noise) costs one frame, never the connection.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.errors: list[str] = []

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= HEADER_BYTES:
            magic, version, type_, channel, flags, length = HEADER.unpack_from(self._buf)
            problem = None
            if magic != MAGIC:
                problem = "bad magic"
            elif version != PROTOCOL_VERSION:
                problem = f"unsupported protocol version {version}"
            elif type_ not in FRAME_NAMES:
                problem = f"unknown frame type {type_}"
            elif length > MAX_PAYLOAD_BYTES:
                problem = f"frame length {length} exceeds {MAX_PAYLOAD_BYTES}"
            if problem:
                self.errors.append(problem)
                nxt = self._buf.find(MAGIC, 1)
                del self._buf[: nxt if nxt > 0 else max(1, len(self._buf) - 1)]
                continue
            if len(self._buf) < HEADER_BYTES + length:
                break
            payload = bytes(self._buf[HEADER_BYTES: HEADER_BYTES + length])
            del self._buf[: HEADER_BYTES + length]
            frames.append(Frame(type_, channel, flags, payload))
        return frames

    def reset(self) -> None:
        self._buf.clear()


Writer = Callable[[bytes], Awaitable[None]]


class Channel:
    """One multiplexed operation: ordered inbound events plus credit-limited outbound DATA.

    ``recv()`` returns the next inbound frame (MSG, DATA, EOF, CLOSE); an ERROR
    from the peer raises ChannelError and a lost connection raises ChannelClosed.
    Credit for inbound DATA is given back as the consumer takes it, so the peer
    can never have more than one window of bytes queued here.
    """

    def __init__(self, conn: Connection, channel_id: int) -> None:
        self.conn = conn
        self.id = channel_id
        self._inbox: asyncio.Queue[Frame | BaseException] = asyncio.Queue()
        self._credit = INITIAL_WINDOW_BYTES
        self._credit_changed = asyncio.Event()
        self._unacked = 0
        self.closed_local = False
        self.closed_remote = False

    # -- inbound ---------------------------------------------------------
    def _deliver(self, frame: Frame | BaseException) -> None:
        self._inbox.put_nowait(frame)

    def _grant(self, n: int) -> None:
        self._credit += n
        self._credit_changed.set()

    async def recv(self) -> Frame:
        item = await self._inbox.get()
        if isinstance(item, BaseException):
            self._inbox.put_nowait(item)  # every later recv sees the same end
            raise item
        if item.type == DATA and item.payload:
            self._unacked += len(item.payload)
            # Grant in batches of a quarter window: one WINDOW frame per 128 KiB, not per chunk.
            if self._unacked >= INITIAL_WINDOW_BYTES // 4 and not self.closed_local:
                n, self._unacked = self._unacked, 0
                with contextlib.suppress(ChannelClosed, ConnectionError):
                    await self.conn.send(WINDOW, self.id, 0, struct.pack(">I", n))
        return item

    async def recv_msg(self) -> dict[str, Any]:
        """The next MSG's JSON; ChannelClosed if the channel ends first. DATA/EOF are not expected."""
        frame = await self.recv()
        if frame.type == MSG:
            return frame.json()
        if frame.type == CLOSE:
            raise ChannelClosed(f"channel {self.id} closed before a message")
        raise ProtocolError(f"expected MSG on channel {self.id}, got {FRAME_NAMES[frame.type]}")

    # -- outbound --------------------------------------------------------
    async def send_msg(self, obj: dict[str, Any]) -> None:
        await self.conn.send(MSG, self.id, 0, encode_json(obj))

    async def send_data(self, data: bytes, fd: int = FD_STREAM) -> None:
        view = memoryview(data)
        while view:
            while self._credit <= 0:
                if self.closed_remote or self.conn.closed:
                    raise ChannelClosed(f"channel {self.id} closed while sending")
                self._credit_changed.clear()
                await self._credit_changed.wait()
            n = min(len(view), self._credit, MAX_DATA_CHUNK_BYTES)
            self._credit -= n
            await self.conn.send(DATA, self.id, fd, bytes(view[:n]))
            view = view[n:]

    async def send_eof(self, fd: int = FD_STREAM) -> None:
        await self.conn.send(EOF, self.id, fd)

    async def send_error(self, code: str, message: str) -> None:
        if not self.closed_local:
            self.closed_local = True
            await self.conn.send(ERROR, self.id, 0, encode_json({"code": code, "message": message[:4000]}))
            self.conn._forget(self.id)

    async def close(self, info: dict[str, Any] | None = None) -> None:
        """Say we are finished; idempotent, and harmless on a dead connection."""
        if self.closed_local:
            return
        self.closed_local = True
        with contextlib.suppress(ChannelClosed, ConnectionError):
            await self.conn.send(CLOSE, self.id, 0, encode_json(info) if info else b"")
        if self.closed_remote:
            self.conn._forget(self.id)

    def _remote_closed(self) -> None:
        self.closed_remote = True
        self._credit_changed.set()
        if self.closed_local:
            self.conn._forget(self.id)


OpenHandler = Callable[[Channel, dict[str, Any]], Awaitable[None]]


class Connection:
    """Frames over one byte stream, demultiplexed into channels.

    The transport pushes received bytes into ``feed()`` and supplies ``write``.
    The side that accepts ``OPEN`` (the agent) passes ``on_open``; the host
    passes none and opens channels itself with ``open()``.
    """

    def __init__(self, write: Writer, on_open: OpenHandler | None = None,
                 on_hello: Callable[[Frame], Awaitable[None]] | None = None) -> None:
        self._write = write
        self._write_lock = asyncio.Lock()
        self._decoder = FrameDecoder()
        self._channels: dict[int, Channel] = {}
        self._on_open = on_open
        self._on_hello = on_hello
        self._next_id = 1
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self.hello: asyncio.Future[Frame] | None = None
        self.peer_errors: list[str] = []

    @property
    def decode_errors(self) -> list[str]:
        return self._decoder.errors

    async def send(self, type_: int, channel: int, flags: int = 0, payload: bytes = b"") -> None:
        if self.closed:
            raise ChannelClosed("connection closed")
        frame = encode_frame(type_, channel, flags, payload)
        async with self._write_lock:
            await self._write(frame)

    async def open(self, op: str, **args: Any) -> Channel:
        """Open a channel for ``op`` (host side)."""
        if self.closed:
            raise ChannelClosed("connection closed")
        cid = self._next_id
        self._next_id = 1 if cid >= MAX_CHANNEL_ID else cid + 1
        ch = Channel(self, cid)
        self._channels[cid] = ch
        await self.send(OPEN, cid, 0, encode_json({"op": op, **args}))
        return ch

    def _forget(self, cid: int) -> None:
        self._channels.pop(cid, None)

    async def feed(self, data: bytes) -> None:
        """Process received bytes; answers decoding problems with an ERROR on channel 0."""
        before = len(self._decoder.errors)
        frames = self._decoder.feed(data)
        for problem in self._decoder.errors[before:]:
            with contextlib.suppress(ChannelClosed, ConnectionError):
                await self.send(ERROR, 0, 0, encode_json({"code": "bad_frame", "message": problem}))
        for frame in frames:
            await self._dispatch(frame)

    async def _dispatch(self, frame: Frame) -> None:
        if frame.type == HELLO:
            if self._on_hello is not None:
                await self._on_hello(frame)
            elif self.hello is not None and not self.hello.done():
                self.hello.set_result(frame)
            return
        if frame.channel == 0:
            if frame.type == ERROR:
                self.peer_errors.append(frame.payload.decode(errors="replace")[:500])
            return
        if frame.type == OPEN:
            await self._accept(frame)
            return
        ch = self._channels.get(frame.channel)
        if ch is None:
            return  # late frames of a channel we already finished: drop
        if frame.type == WINDOW:
            if len(frame.payload) == 4:
                ch._grant(struct.unpack(">I", frame.payload)[0])
        elif frame.type == ERROR:
            try:
                info = frame.json()
                err: BaseException = ChannelError(str(info.get("code", "error")), str(info.get("message", "")))
            except ProtocolError:
                err = ChannelError("error", frame.payload.decode(errors="replace"))
            ch._remote_closed()
            ch.closed_local = True
            self._forget(ch.id)
            ch._deliver(err)
        else:
            if frame.type == CLOSE:
                ch._remote_closed()
            ch._deliver(frame)

    async def _accept(self, frame: Frame) -> None:
        if self._on_open is None:
            await self.send(ERROR, frame.channel, 0,
                            encode_json({"code": "bad_frame", "message": "this side does not accept OPEN"}))
            return
        if frame.channel in self._channels:
            await self.send(ERROR, frame.channel, 0,
                            encode_json({"code": "busy", "message": f"channel {frame.channel} is open"}))
            return
        ch = Channel(self, frame.channel)
        try:
            args = frame.json()
        except ProtocolError as exc:
            await ch.send_error("bad_frame", str(exc))
            return
        self._channels[frame.channel] = ch
        task = asyncio.get_running_loop().create_task(self._run_handler(ch, args),
                                                      name=f"agent-op-{args.get('op')}-{ch.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, ch: Channel, args: dict[str, Any]) -> None:
        assert self._on_open is not None
        try:
            await self._on_open(ch, args)
        except asyncio.CancelledError:
            raise
        except ChannelError:
            pass
        except ChannelClosed:
            pass
        except Exception as exc:  # one failing operation must never take the agent down
            with contextlib.suppress(Exception):
                await ch.send_error("internal", f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await ch.close()
            self._forget(ch.id)

    def reset(self) -> None:
        """Drop every channel (a new host session, or the old one is gone)."""
        for task in list(self._tasks):
            task.cancel()
        for ch in list(self._channels.values()):
            # The old session's peer is gone: a CLOSE, ERROR or WINDOW sent now by a handler
            # unwinding would land in the next session, which may reuse the channel id.
            ch.closed_local = True
            ch._remote_closed()
            ch._deliver(ChannelClosed("session reset"))
        self._channels.clear()
        self._decoder.reset()

    def connection_lost(self, exc: BaseException | None = None) -> None:
        """The byte stream is gone: every channel's waiter gets ChannelClosed."""
        if self.closed:
            return
        self.closed = True
        err = ChannelClosed(f"connection lost: {exc}" if exc else "connection lost")
        for ch in list(self._channels.values()):
            ch._remote_closed()
            ch._deliver(err)
        self._channels.clear()
        if self.hello is not None and not self.hello.done():
            self.hello.set_exception(err)
        for task in list(self._tasks):
            task.cancel()

    @property
    def open_channels(self) -> int:
        return len(self._channels)
