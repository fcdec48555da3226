"""The guest agent, PID 1 of the VM: serves the host's operations over the ``ember.agent`` virtio-serial port.

Run as ``python3 -m ember.guest.agent [--port PATH | --fd N] [--rootfs DIR] [--exit-on-eof]``.
Stdlib only: it runs on the runtime disk's Python, not in the host's venv.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import contextlib
import errno
import fcntl
import functools
import glob
import itertools
import os
import signal
import struct
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from ember.guest import _args
from ember.guest import protocol as p
from ember.guest._app import App
from ember.guest._cgroup import setup_user_cgroup
from ember.guest._exec import op_exec
from ember.guest._files import op_file_get, op_file_put
from ember.guest._net import op_stream
from ember.guest._procs import Aborted, AsyncFd, Context, Reaper, log

try:
    from ember import __version__ as AGENT_VERSION
except ImportError:  # pragma: no cover - a runtime disk with ember.guest alone
    AGENT_VERSION = "0.1.0"

PORT_NAME = "ember.agent"
PORT_WAIT_S = 30.0
READ_BYTES = 256 * 1024
# Frames queued beyond this make senders wait: the port's pace, not our memory, bounds output.
WRITE_HIGH_WATER_BYTES = 256 * 1024
# With no host on the port, reads return EOF at once and poll keeps saying readable: back off.
EOF_RETRY_S = 0.1
REEXEC_DELAY_S = 1.0
MAX_ENTROPY_BYTES = 4096
RNDADDENTROPY = 0x40085203
RNDRESEEDCRNG = 0x5207

Handler = Callable[[p.Channel, dict[str, Any]], Awaitable[None]]


class PortWriter:
    """Queues whole frames and writes them as the port accepts them.

    A frame is queued entirely or not at all, so a sender cancelled while it
    waits can never leave half a frame on the wire.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._queue: collections.deque[memoryview] = collections.deque()
        self._queued = 0
        self._head_started = False
        self._waiting = False
        self._drained = asyncio.Event()
        self._drained.set()
        self._failing = False

    async def write(self, frame: bytes) -> None:
        self._queue.append(memoryview(frame))
        self._queued += len(frame)
        if not self._waiting:
            self._flush()
        while self._queued > WRITE_HIGH_WATER_BYTES:
            self._drained.clear()
            await self._drained.wait()

    def discard_pending(self) -> None:
        """Drop frames not yet started (they belong to a session that is gone)."""
        head = self._queue[0] if self._queue and self._head_started else None
        self._queue.clear()
        if head is not None:
            self._queue.append(head)
        self._queued = len(head) if head is not None else 0
        self._after_write()

    def _flush(self) -> None:
        while self._queue:
            try:
                n = os.writev(self._fd, list(itertools.islice(self._queue, 64)))
            except BlockingIOError:
                if not self._waiting:
                    self._loop.add_writer(self._fd, self._flush)
                    self._waiting = True
                break
            except OSError as exc:
                # The other end is gone (reads will see EOF and reset the session): drop the output.
                if not self._failing:
                    log(f"write to the port failed, dropping output: {exc}")
                self._failing = True
                self._queue.clear()
                self._queued = 0
                break
            self._failing = False
            self._queued -= n
            while n:
                head = self._queue[0]
                if len(head) <= n:
                    n -= len(head)
                    self._queue.popleft()
                    self._head_started = False
                else:
                    self._queue[0] = head[n:]
                    self._head_started = True
                    n = 0
        self._after_write()

    def _after_write(self) -> None:
        if not self._queue and self._waiting:
            self._loop.remove_writer(self._fd)
            self._waiting = False
        if self._queued <= WRITE_HIGH_WATER_BYTES:
            self._drained.set()


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


class Agent:
    """One port, one host session at a time, one handler task per channel."""

    def __init__(self, fd: int, rootfs: str, exit_on_eof: bool, user_cgroup: int | None = None) -> None:
        self.fd = fd
        self.exit_on_eof = exit_on_eof
        self.ctx = Context(Reaper(), None if os.path.realpath(rootfs) == "/" else rootfs, user_cgroup)
        self.writer = PortWriter(fd)
        self.conn = p.Connection(self.writer.write, on_open=self._on_open, on_hello=self._on_hello)
        self.app = App(self.ctx)
        ops: dict[str, Handler] = {
            "ping": self._ping, "version": self._version, "clock_set": self._clock_set,
            "entropy_add": self._entropy_add,
            "app_start": self.app.op_start, "app_stop": self.app.op_stop,
            "app_status": self.app.op_status, "app_logs": self.app.op_logs,
        }
        for name, op in (("exec", op_exec), ("stream", op_stream), ("file_put", op_file_put),
                         ("file_get", op_file_get)):
            ops[name] = functools.partial(op, self.ctx)
        self.ops = ops

    async def run(self) -> None:
        self.ctx.reaper.start()
        port = AsyncFd(self.fd)
        try:
            while True:
                try:
                    data = await port.read(READ_BYTES)
                except OSError as exc:
                    log(f"read from the port failed: {exc}")
                    data = b""
                if not data:
                    # The host went away: its channels are dead, and so are their commands.
                    self.conn.reset()
                    self.writer.discard_pending()
                    if self.exit_on_eof:
                        return
                    await asyncio.sleep(EOF_RETRY_S)
                    continue
                try:
                    await self.conn.feed(data)
                except Exception as exc:  # bad input may cost what came with it, never the agent
                    log(f"error handling input: {exc!r}")
        finally:
            self.conn.reset()
            self.app.kill()
            self.ctx.reaper.stop()

    async def _on_hello(self, frame: p.Frame) -> None:
        try:
            session = frame.json().get("session")
        except p.ProtocolError:
            session = None
        # A new session (after a restore, the host's side of the old channels is gone): start clean.
        self.conn.reset()
        self.writer.discard_pending()
        await self.conn.send(p.HELLO, 0, 0, p.encode_json({
            "protocol": p.PROTOCOL_VERSION, "agent": AGENT_VERSION, "boot_id": boot_id(),
            "session": session if isinstance(session, str) else None}))

    async def _on_open(self, ch: p.Channel, args: dict[str, Any]) -> None:
        op = args.get("op")
        handler = self.ops.get(op) if isinstance(op, str) else None
        try:
            if handler is None:
                raise _args.OpError("unknown_op", f"unknown operation {op!r}")
            await handler(ch, args)
        except _args.OpError as exc:
            await ch.send_error(exc.code, exc.message)
        except OSError as exc:
            await ch.send_error(_args.errno_code(exc), str(exc))
        except Aborted:
            pass  # the host closed the channel while we were blocked: nothing left to say

    # -- small operations ------------------------------------------------------
    async def _ping(self, ch: p.Channel, args: dict[str, Any]) -> None:
        await ch.send_msg({"pong": True, "time_ns": time.time_ns()})

    async def _version(self, ch: p.Channel, args: dict[str, Any]) -> None:
        await ch.send_msg({"protocol": p.PROTOCOL_VERSION, "agent": AGENT_VERSION})

    async def _clock_set(self, ch: p.Channel, args: dict[str, Any]) -> None:
        realtime_ns = _args.int_arg(args, "realtime_ns", _args.REQUIRED, 1)
        previous = time.time_ns()
        time.clock_settime_ns(time.CLOCK_REALTIME, realtime_ns)
        await ch.send_msg({"previous_ns": previous})

    async def _entropy_add(self, ch: p.Channel, args: dict[str, Any]) -> None:
        try:
            data = base64.b64decode(_args.str_arg(args, "data"), validate=True)
        except binascii.Error as exc:
            raise _args.bad_args("data", f"not base64: {exc}") from None
        if len(data) > MAX_ENTROPY_BYTES:
            raise _args.bad_args("data", f"{len(data)} bytes exceeds {MAX_ENTROPY_BYTES}")
        bits = 8 * len(data)
        fd = os.open("/dev/random", os.O_WRONLY | os.O_CLOEXEC)
        try:
            # struct rand_pool_info; a mutable buffer, since ioctl() copies immutable ones only up to 1 KiB.
            fcntl.ioctl(fd, RNDADDENTROPY, bytearray(struct.pack("ii", bits, len(data)) + data))
            try:
                fcntl.ioctl(fd, RNDRESEEDCRNG)
            except OSError as exc:
                if exc.errno not in (errno.ENOTTY, errno.EINVAL):  # kernels before 4.17 lack it
                    raise
        finally:
            os.close(fd)
        await ch.send_msg({"bits": bits})


# -- process setup ---------------------------------------------------------------
def find_port(timeout: float = PORT_WAIT_S, sysfs: str = "/sys/class/virtio-ports",
              dev_dir: str = "/dev") -> str:
    """/dev/vportNpM of the port named ``ember.agent``, waiting for the device to appear."""
    deadline = time.monotonic() + timeout
    while True:
        for name_file in sorted(glob.glob(os.path.join(sysfs, "*", "name"))):
            try:
                with open(name_file) as f:
                    name = f.read().strip()
            except OSError:
                continue
            dev = os.path.join(dev_dir, os.path.basename(os.path.dirname(name_file)))
            if name == PORT_NAME and os.path.exists(dev):
                return dev
        if time.monotonic() > deadline:
            raise RuntimeError(f"no virtio-serial port named {PORT_NAME} after {timeout:.0f} s")
        time.sleep(0.1)


def open_port(opts: argparse.Namespace) -> int:
    if opts.fd is not None:
        # Inherited on purpose, but our own children must not get it.
        os.set_inheritable(opts.fd, False)
        return int(opts.fd)
    path = opts.port or find_port()
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)


def _ensure_stdio() -> None:
    """Fds 0-2 open (on /dev/null if need be), so no pipe we create lands on them."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.open(os.devnull, os.O_RDWR)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m ember.guest.agent", description=__doc__)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port", help="path of the port device (default: find the port named ember.agent)")
    where.add_argument("--fd", type=int, help="use this already open fd (tests)")
    parser.add_argument("--rootfs", default="/rootfs", help="the app's root, for root=rootfs")
    parser.add_argument("--exit-on-eof", action="store_true",
                        help="exit when the host side closes (tests); otherwise wait for the next host")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    # PID 1 semantics: nothing but SIGKILL from inside the VM ends the agent.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    _ensure_stdio()
    try:
        fd = open_port(opts)
        # Only as the VM's init: elsewhere (tests on a host) the cgroups are not ours to change.
        user_cgroup = setup_user_cgroup() if os.getpid() == 1 else None

        async def serve() -> None:
            await Agent(fd, opts.rootfs, opts.exit_on_eof, user_cgroup).run()

        asyncio.run(serve())
        if opts.exit_on_eof:
            return
        log("the serving loop ended")
    except Exception:
        if opts.exit_on_eof:
            raise
        log("fatal error:\n" + traceback.format_exc())
    # When PID 1 exits the kernel panics: start afresh instead (children stay ours across exec).
    time.sleep(REEXEC_DELAY_S)
    if opts.fd is not None:
        with contextlib.suppress(OSError):
            os.set_inheritable(opts.fd, True)
    os.execv(sys.executable, sys.orig_argv)


if __name__ == "__main__":
    main()
