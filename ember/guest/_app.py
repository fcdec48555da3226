"""The supervised app: one long-running process, its exit status and a ring buffer of its log lines."""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import signal
import time
from typing import Any

from ember.guest import _args
from ember.guest import protocol as p
from ember.guest._procs import AsyncFd, Context, ProcSpec, cancel_tasks, exit_info, kill_group, spawn

MAX_LINES = 10000
MAX_LINE_BYTES = 16 * 1024
# 10000 maximal lines would be 160 MiB, enough for a chatty app to get PID 1 OOM-killed (a kernel
# panic) in a small VM; the oldest lines also go once the buffer holds this many characters.
MAX_LOG_CHARS = 16 << 20
# After SIGKILL a process normally dies at once; one stuck in the kernel gets this long.
KILL_WAIT_S = 10.0
# How long app_stop waits for the last lines the app wrote to come out of its pipes.
DRAIN_WAIT_S = 1.0


class App:
    """Owns the app's process and log; survives host sessions (only app_stop ends the app)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.lines: collections.deque[dict[str, Any]] = collections.deque()
        self._chars = 0
        self.seq = 0
        self.pid: int | None = None
        self._exit: asyncio.Future[int] | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self._start_lock = asyncio.Lock()
        # Replaced on every batch of new lines; followers wait on the one current when they last looked.
        self._changed = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._exit is not None and not self._exit.done()

    def status(self) -> dict[str, Any]:
        ended = self._exit is not None and self._exit.done() and not self._exit.cancelled()
        info = exit_info(self._exit.result()) if ended else {"exit": None, "signal": None}
        return {"running": self.running, "pid": self.pid, **info, "log_seq": self.seq}

    def kill(self) -> None:
        if self.running and self.pid is not None:
            kill_group(self.pid, signal.SIGKILL)

    # -- operations ----------------------------------------------------------
    async def op_start(self, ch: p.Channel, args: dict[str, Any]) -> None:
        spec = ProcSpec.from_args(args, self._ctx)
        async with self._start_lock:  # two concurrent starts: the second must see the first's app
            if self.running:
                raise _args.OpError("busy", f"the app is already running (pid {self.pid})")
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            try:
                pid, exit_fut = await spawn(self._ctx.reaper, spec, (null, out_w, err_w))
            except BaseException:
                os.close(out_r)
                os.close(err_r)
                raise
            finally:
                for fd in (null, out_w, err_w):
                    os.close(fd)
            self.pid, self._exit = pid, exit_fut
            for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
                task = asyncio.create_task(self._read_lines(AsyncFd(fd), stream), name=f"app-{stream}")
                self._readers.add(task)
                task.add_done_callback(self._readers.discard)
        await ch.send_msg({"pid": pid})

    async def op_stop(self, ch: p.Channel, args: dict[str, Any]) -> None:
        signum = _args.int_arg(args, "signal", signal.SIGTERM, 1, 64)
        timeout = _args.number_arg(args, "timeout_s", 10.0, 0.0, 86400.0)
        if self._exit is None or self.pid is None:
            raise _args.OpError("not_found", "no app has been started")
        exit_fut = self._exit
        if not exit_fut.done():
            kill_group(self.pid, signum)
            try:
                # Shielded: the status future belongs to the app, not to this request.
                await asyncio.wait_for(asyncio.shield(exit_fut), timeout)
            except TimeoutError:
                kill_group(self.pid, signal.SIGKILL)
                try:
                    await asyncio.wait_for(asyncio.shield(exit_fut), KILL_WAIT_S)
                except TimeoutError:
                    raise _args.OpError("ETIMEDOUT", f"the app (pid {self.pid}) survived SIGKILL") from None
        readers = [t for t in self._readers if not t.done()]
        if readers:
            await asyncio.wait(readers, timeout=DRAIN_WAIT_S)
        await ch.send_msg(exit_info(exit_fut.result()))

    async def op_status(self, ch: p.Channel, args: dict[str, Any]) -> None:
        await ch.send_msg(self.status())

    async def op_logs(self, ch: p.Channel, args: dict[str, Any]) -> None:
        last = _args.int_arg(args, "since", 0)
        follow = _args.bool_arg(args, "follow", False)
        host_closed = asyncio.create_task(_until_close(ch)) if follow else None
        try:
            while True:
                changed = self._changed
                for line in self._after(last):
                    await ch.send_msg(line)
                    last = line["seq"]
                if host_closed is None:
                    return
                waiter = asyncio.create_task(changed.wait())
                try:
                    await asyncio.wait({waiter, host_closed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if host_closed.done():
                    return
        finally:
            if host_closed is not None:
                cancel_tasks([host_closed])

    # -- internals -------------------------------------------------------------
    def _after(self, seq: int) -> list[dict[str, Any]]:
        if not self.lines:
            return []
        start = max(0, seq + 1 - self.lines[0]["seq"])
        return list(itertools.islice(self.lines, start, None))

    async def _read_lines(self, src: AsyncFd, stream: str) -> None:
        buf = bytearray()
        try:
            while data := await src.read():
                buf += data
                pos = self._emit_lines(buf, stream)
                del buf[:pos]  # once per read: deleting per line would be quadratic
            if buf:
                self._emit(bytes(buf), stream)
                self._notify()
        finally:
            src.close()

    def _emit_lines(self, buf: bytearray, stream: str) -> int:
        """Emit every complete (or over-long) line in ``buf``; the offset of what is left."""
        pos = 0
        emitted = False
        while True:
            nl = buf.find(b"\n", pos, pos + MAX_LINE_BYTES + 1)
            if nl >= 0:
                self._emit(bytes(buf[pos:nl]), stream)
                pos = nl + 1
            elif len(buf) - pos >= MAX_LINE_BYTES:
                self._emit(bytes(buf[pos:pos + MAX_LINE_BYTES]), stream)
                pos += MAX_LINE_BYTES
            else:
                break
            emitted = True
        if emitted:
            self._notify()
        return pos

    def _emit(self, raw: bytes, stream: str) -> None:
        self.seq += 1
        line = raw.decode("utf-8", errors="replace")
        self.lines.append({"seq": self.seq, "time_ns": time.time_ns(), "stream": stream, "line": line})
        self._chars += len(line)
        while len(self.lines) > MAX_LINES or self._chars > MAX_LOG_CHARS:
            self._chars -= len(self.lines.popleft()["line"])

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


async def _until_close(ch: p.Channel) -> None:
    """Returns once the host closes the channel (or the session ends); other frames are ignored."""
    while (await ch.recv()).type != p.CLOSE:
        pass
