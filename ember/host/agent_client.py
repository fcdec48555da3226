"""The host's client of the guest agent: one connection, many concurrent operations.

Everything the guest sends is treated as untrusted input: frames are size-capped
by the protocol decoder, every wait has a timeout, and nothing the guest says is
used as a host path or command.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ember.errors import AgentError, AgentOpError, AgentTimeout
from ember.guest import protocol as p

# Python starts in 2-3 s under TCG and the kernel boots in ~3 s; a loaded host can triple that.
AGENT_CONNECT_TIMEOUT_S = 90.0
# How often HELLO is repeated while the guest is still booting.
HELLO_RETRY_S = 2.0
OP_TIMEOUT_S = 30.0
READ_CHUNK_BYTES = 256 * 1024
ENTROPY_BYTES = 256
# Caps on what a guest can make the host buffer for a single call.
MAX_EXEC_OUTPUT_BYTES = 64 << 20
MAX_FILE_GET_BYTES = 1 << 30


@dataclass(frozen=True)
class ExecResult:
    """A finished command: exit status (or the signal that ended it) and its captured output."""

    exit_code: int | None
    signal: int | None
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _op_error(op: str, exc: p.ChannelError) -> AgentOpError:
    return AgentOpError(op, exc.code, exc.message)


@contextlib.contextmanager
def _agent_errors(op: str) -> Iterator[None]:
    """Protocol-level ends of a channel become the AgentError tree callers handle."""
    try:
        yield
    except p.ChannelError as exc:
        raise _op_error(op, exc) from None
    except (p.ChannelClosed, ConnectionError) as exc:
        raise AgentError(f"{op}: connection to the agent lost: {exc}") from None


class Process:
    """A command running in the guest, with its stdin, output and control messages."""

    def __init__(self, channel: p.Channel, pid: int) -> None:
        self.channel = channel
        self.pid = pid
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.finished = False

    async def write(self, data: bytes) -> None:
        with _agent_errors("exec"):
            await self.channel.send_data(data, p.FD_STREAM)

    async def close_stdin(self) -> None:
        with _agent_errors("exec"):
            await self.channel.send_eof(p.FD_STREAM)

    async def send_signal(self, signum: int) -> None:
        with _agent_errors("exec"):
            await self.channel.send_msg({"signal": signum})

    async def resize(self, cols: int, rows: int) -> None:
        with _agent_errors("exec"):
            await self.channel.send_msg({"resize": [cols, rows]})

    async def events(self) -> AsyncIterator[tuple[int, bytes]]:
        """Output as (fd, bytes) until the process ends; then ``exit_code``/``signal`` are set."""
        while not self.finished:
            try:
                frame = await self.channel.recv()
            except p.ChannelError as exc:
                raise _op_error("exec", exc) from None
            except p.ChannelClosed as exc:
                raise AgentError(f"exec: connection to the agent lost: {exc}") from None
            if frame.type == p.DATA:
                yield frame.flags, frame.payload
            elif frame.type == p.MSG:
                msg = frame.json()
                if "exit" in msg:
                    self.exit_code, self.signal = msg.get("exit"), msg.get("signal")
            elif frame.type == p.CLOSE:
                self.finished = True

    async def kill(self) -> None:
        """End the process (the agent kills its process group when the channel closes)."""
        await self.channel.close()


class Stream:
    """A byte stream to a TCP port inside the guest."""

    def __init__(self, channel: p.Channel) -> None:
        self.channel = channel
        self._eof = False

    async def write(self, data: bytes) -> None:
        with _agent_errors("stream"):
            await self.channel.send_data(data)

    async def write_eof(self) -> None:
        with _agent_errors("stream"):
            await self.channel.send_eof()

    async def read(self) -> bytes:
        """The next chunk; b"" once the guest side has closed its direction."""
        while not self._eof:
            try:
                frame = await self.channel.recv()
            except p.ChannelError as exc:
                raise _op_error("stream", exc) from None
            except p.ChannelClosed:
                self._eof = True
                break
            if frame.type == p.DATA:
                return frame.payload
            if frame.type in (p.EOF, p.CLOSE):
                self._eof = True
        return b""

    async def close(self) -> None:
        await self.channel.close()


class AgentClient:
    """Talks to one VM's agent over its virtio-serial socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.conn = p.Connection(self._write)
        self.hello: dict[str, Any] = {}
        self._pump = asyncio.get_running_loop().create_task(self._read_loop(), name="agent-reader")

    @classmethod
    async def connect(cls, socket_path: Path, timeout: float = AGENT_CONNECT_TIMEOUT_S,
                      alive: Any = None) -> AgentClient:
        """Connect and complete the HELLO exchange, waiting for the guest to boot.

        ``alive`` is an optional callable; when it returns False (the VMM died)
        waiting stops at once instead of running out the timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=READ_CHUNK_BYTES)
                break
            except OSError as exc:
                if time.monotonic() > deadline or (alive is not None and not alive()):
                    raise AgentError(f"cannot connect to the agent socket {socket_path}: {exc}") from None
                await asyncio.sleep(0.02)
        client = cls(reader, writer)
        try:
            await client._handshake(deadline, alive)
        except BaseException:
            await client.close()
            raise
        return client

    async def _handshake(self, deadline: float, alive: Any) -> None:
        session = secrets.token_hex(8)
        while True:
            self.conn.hello = asyncio.get_running_loop().create_future()
            await self.conn.send(p.HELLO, 0, 0, p.encode_json({"session": session}))
            try:
                frame = await asyncio.wait_for(asyncio.shield(self.conn.hello), HELLO_RETRY_S)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise AgentTimeout(f"the agent did not answer HELLO within the deadline "
                                       f"({AGENT_CONNECT_TIMEOUT_S} s)") from None
                if alive is not None and not alive():
                    raise AgentError("the VM exited before its agent answered") from None
                continue
            except p.ChannelClosed as exc:
                raise AgentError(f"agent connection lost during HELLO: {exc}") from None
            info = frame.json()
            # An answer to an earlier HELLO of this session is as good; one from another session is stale.
            if info.get("session") == session:
                self.hello = info
                return

    async def _write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(READ_CHUNK_BYTES)
                if not data:
                    break
                await self.conn.feed(data)
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.conn.connection_lost(exc)
        finally:
            self.conn.connection_lost(None)

    @property
    def connected(self) -> bool:
        return not self.conn.closed

    async def close(self) -> None:
        self.conn.connection_lost(None)
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._pump
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    # -- one-shot operations ---------------------------------------------
    async def _call(self, op: str, timeout: float = OP_TIMEOUT_S, **args: Any) -> dict[str, Any]:
        try:
            with _agent_errors(op):
                ch = await self.conn.open(op, **args)
            try:
                return await asyncio.wait_for(ch.recv_msg(), timeout)
            finally:
                await ch.close()
        except TimeoutError:
            raise AgentTimeout(f"{op}: no answer from the agent in {timeout} s") from None
        except p.ChannelError as exc:
            raise _op_error(op, exc) from None
        except p.ChannelClosed as exc:
            raise AgentError(f"{op}: connection to the agent lost: {exc}") from None

    async def ping(self) -> float:
        """Round-trip time in seconds."""
        t0 = time.perf_counter()
        await self._call("ping")
        return time.perf_counter() - t0

    async def version(self) -> dict[str, Any]:
        return await self._call("version")

    async def set_clock(self, realtime_ns: int | None = None) -> None:
        await self._call("clock_set", realtime_ns=realtime_ns if realtime_ns is not None else time.time_ns())

    async def add_entropy(self, nbytes: int = ENTROPY_BYTES) -> None:
        await self._call("entropy_add", data=base64.b64encode(os.urandom(nbytes)).decode())

    # -- processes -------------------------------------------------------
    async def spawn(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                    uid: int | None = None, gid: int | None = None, stdin: bool = False,
                    pty: tuple[int, int] | None = None, root: str = "rootfs") -> Process:
        """Start a command; talk to it through the returned Process."""
        args: dict[str, Any] = {"argv": argv, "env": env, "cwd": cwd, "uid": uid, "gid": gid,
                                "stdin": stdin, "root": root,
                                "pty": {"cols": pty[0], "rows": pty[1]} if pty else None}
        with _agent_errors("exec"):
            ch = await self.conn.open("exec", **args)
        try:
            msg = await asyncio.wait_for(ch.recv_msg(), OP_TIMEOUT_S)
        except TimeoutError:
            await ch.close()
            raise AgentTimeout(f"exec {argv[0]!r}: not started in {OP_TIMEOUT_S} s") from None
        except p.ChannelError as exc:
            raise _op_error("exec", exc) from None
        except p.ChannelClosed as exc:
            raise AgentError(f"exec: connection to the agent lost: {exc}") from None
        return Process(ch, int(msg.get("pid", -1)))

    async def exec(self, argv: list[str], *, input: bytes | None = None, timeout: float | None = OP_TIMEOUT_S,
                   **kwargs: Any) -> ExecResult:
        """Run a command to completion and capture its output."""
        proc = await self.spawn(argv, stdin=input is not None, **kwargs)
        out = {1: bytearray(), 2: bytearray()}

        async def run() -> None:
            if input is not None:
                await proc.write(input)
                await proc.close_stdin()
            async for fd, data in proc.events():
                buf = out.get(fd)
                if buf is not None and len(buf) + len(data) <= MAX_EXEC_OUTPUT_BYTES:
                    buf += data

        try:
            await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            await proc.kill()
            raise AgentTimeout(f"exec {argv[0]!r}: still running after {timeout} s (killed)") from None
        return ExecResult(proc.exit_code, proc.signal, bytes(out[1]), bytes(out[2]))

    # -- streams and files -----------------------------------------------
    async def open_stream(self, port: int, host: str = "127.0.0.1") -> Stream:
        """A byte stream to ``host:port`` as seen from inside the guest."""
        with _agent_errors("stream"):
            ch = await self.conn.open("stream", port=port, host=host)
        try:
            await asyncio.wait_for(ch.recv_msg(), OP_TIMEOUT_S)
        except TimeoutError:
            await ch.close()
            raise AgentTimeout(f"stream to port {port}: no answer in {OP_TIMEOUT_S} s") from None
        except p.ChannelError as exc:
            raise _op_error("stream", exc) from None
        except p.ChannelClosed as exc:
            raise AgentError(f"stream: connection to the agent lost: {exc}") from None
        return Stream(ch)

    async def put_file(self, path: str, data: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0,
                       root: str = "rootfs") -> int:
        """Write ``data`` to ``path`` in the guest (atomically); the size written."""
        ch = await self.conn.open("file_put", path=path, mode=mode, uid=uid, gid=gid, root=root)
        try:
            await asyncio.wait_for(ch.recv_msg(), OP_TIMEOUT_S)
            await ch.send_data(data)
            await ch.send_eof()
            msg = await asyncio.wait_for(ch.recv_msg(), OP_TIMEOUT_S)
            return int(msg["size"])
        except TimeoutError:
            raise AgentTimeout(f"file_put {path}: no answer in {OP_TIMEOUT_S} s") from None
        except p.ChannelError as exc:
            raise _op_error("file_put", exc) from None
        finally:
            await ch.close()

    async def get_file(self, path: str, *, root: str = "rootfs") -> bytes:
        ch = await self.conn.open("file_get", path=path, root=root)
        try:
            head = await asyncio.wait_for(ch.recv_msg(), OP_TIMEOUT_S)
            if int(head.get("size", 0)) > MAX_FILE_GET_BYTES:
                raise AgentError(f"file_get {path}: {head['size']} bytes exceeds {MAX_FILE_GET_BYTES}")
            buf = bytearray()
            while True:
                frame = await asyncio.wait_for(ch.recv(), OP_TIMEOUT_S)
                if frame.type == p.DATA:
                    buf += frame.payload
                    if len(buf) > MAX_FILE_GET_BYTES:
                        raise AgentError(f"file_get {path}: more than {MAX_FILE_GET_BYTES} bytes")
                elif frame.type in (p.EOF, p.CLOSE):
                    return bytes(buf)
        except TimeoutError:
            raise AgentTimeout(f"file_get {path}: no answer in {OP_TIMEOUT_S} s") from None
        except p.ChannelError as exc:
            raise _op_error("file_get", exc) from None
        finally:
            await ch.close()

    # -- the app ---------------------------------------------------------
    async def app_start(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                        uid: int | None = None, gid: int | None = None) -> int:
        msg = await self._call("app_start", argv=argv, env=env, cwd=cwd, uid=uid, gid=gid)
        return int(msg["pid"])

    async def app_stop(self, signal: int = 15, timeout_s: float = 10.0) -> dict[str, Any]:
        return await self._call("app_stop", timeout=timeout_s + OP_TIMEOUT_S, signal=signal, timeout_s=timeout_s)

    async def app_status(self) -> dict[str, Any]:
        return await self._call("app_status")

    async def app_logs(self, since: int = 0, follow: bool = False) -> AsyncIterator[dict[str, Any]]:
        """App log lines after ``since``; with ``follow``, keeps yielding new ones until closed."""
        ch = await self.conn.open("app_logs", since=since, follow=follow)
        try:
            while True:
                try:
                    frame = await ch.recv()
                except p.ChannelError as exc:
                    raise _op_error("app_logs", exc) from None
                except p.ChannelClosed:
                    return
                if frame.type == p.MSG:
                    yield frame.json()
                elif frame.type == p.CLOSE:
                    return
        finally:
            await ch.close()
