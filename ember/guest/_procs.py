"""The agent's child processes: spawning (chroot, credentials, PTY), reaping as PID 1, and async fd I/O."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import gc
import os
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ember.guest import _args

READ_CHUNK_BYTES = 64 * 1024
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_ENV = {"PATH": DEFAULT_PATH, "HOME": "/root"}
# How often a blocked write checks whether the host gave up on the channel meanwhile.
ABORT_POLL_S = 0.25
# Exit statuses nobody asked for yet (orphans, or a child reaped before it was watched) live this long.
UNCLAIMED_KEEP_S = 10.0
# The safety-net reap: SIGCHLD can be lost when asyncio's signal wakeup pipe is full.
REAP_INTERVAL_S = 1.0
# Dispositions the agent changed (or Python set to SIG_IGN); ignored signals survive exec.
_CHILD_DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ,
                          signal.SIGCHLD, signal.SIGQUIT)
_STEPS = ("setup", "setsid", "controlling tty", "dup2", "chroot", "chdir", "setgroups", "setgid",
          "setuid", "exec")
_ERR_RECORD = struct.Struct("ii")


def log(message: str) -> None:
    """One line on stderr (the VM console); never raises, the console may be gone."""
    with contextlib.suppress(Exception):
        sys.stderr.write(f"ember-agent: {message}\n")
        sys.stderr.flush()


class Aborted(Exception):
    """A blocked read or write gave up because its abort check said so."""


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class AsyncFd:
    """A non-blocking fd driven by the event loop.

    ``close()`` is synchronous and safe while a read or write is waiting (the
    waiter wakes and sees a closed fd), so a handler's cleanup never leaves a
    closed fd number registered with the selector, where a reused number would
    confuse it.
    """

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self._loop = asyncio.get_running_loop()
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def closed(self) -> bool:
        return self.fd < 0

    async def read(self, n: int = READ_CHUNK_BYTES) -> bytes:
        """Up to n bytes; b"" at EOF or once closed."""
        while self.fd >= 0:
            try:
                return os.read(self.fd, n)
            except BlockingIOError:
                await self._wait(readable=True)
            except OSError as exc:
                if exc.errno == errno.EIO:  # a PTY master once every slave fd is closed
                    return b""
                raise
        return b""

    async def write_all(self, data: bytes, abort: Callable[[], bool] | None = None) -> None:
        """Write everything (BrokenPipeError if closed meanwhile; Aborted once ``abort()`` is true)."""
        view = memoryview(data)
        while view:
            if self.fd < 0:
                raise BrokenPipeError(errno.EPIPE, "fd closed")
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                await self._wait(readable=False, abort=abort)

    async def _wait(self, readable: bool, abort: Callable[[], bool] | None = None) -> None:
        fd = self.fd
        loop = self._loop
        if readable:
            add, remove = loop.add_reader, loop.remove_reader
        else:
            add, remove = loop.add_writer, loop.remove_writer
        fut: asyncio.Future[None] = loop.create_future()
        add(fd, _wake, fut)
        self._waiters.add(fut)
        try:
            if abort is None:
                await fut
                return
            while not fut.done():
                await asyncio.wait({fut}, timeout=ABORT_POLL_S)
                if not fut.done() and abort():
                    raise Aborted()
        finally:
            self._waiters.discard(fut)
            if self.fd == fd:
                remove(fd)

    def close(self) -> None:
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        os.close(fd)
        for fut in self._waiters:
            _wake(fut)


class Reaper:
    """The one place that collects child exit statuses (the agent is PID 1: orphans come here too).

    Children must not be waited for any other way: ``waitpid(-1)`` here would
    steal their status from any other waiter.
    """

    def __init__(self) -> None:
        self._watched: dict[int, asyncio.Future[int]] = {}
        self._unclaimed: dict[int, tuple[int, float]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGCHLD, self.reap)
        self._tick()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGCHLD)
        if self._timer is not None:
            self._timer.cancel()

    def _tick(self) -> None:
        self.reap()
        self._timer = asyncio.get_running_loop().call_later(REAP_INTERVAL_S, self._tick)

    def watch(self, pid: int) -> asyncio.Future[int]:
        """A future for ``pid``'s wait status; register right after fork."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        early = self._unclaimed.pop(pid, None)
        if early is not None:
            fut.set_result(early[0])
        else:
            self._watched[pid] = fut
        return fut

    def reap(self) -> None:
        now = time.monotonic()
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid == 0:
                break
            fut = self._watched.pop(pid, None)
            if fut is None:
                self._unclaimed[pid] = (status, now)
            elif not fut.done():
                fut.set_result(status)
        for pid, (_, when) in list(self._unclaimed.items()):
            if now - when > UNCLAIMED_KEEP_S:
                del self._unclaimed[pid]


def cancel_tasks(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel helper tasks, and consume their outcome so none is logged as never retrieved."""
    for task in tasks:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def exit_info(status: int) -> dict[str, int | None]:
    """A wait status as the protocol's ``{"exit", "signal"}``."""
    if os.WIFEXITED(status):
        return {"exit": os.WEXITSTATUS(status), "signal": None}
    if os.WIFSIGNALED(status):
        return {"exit": None, "signal": os.WTERMSIG(status)}
    return {"exit": None, "signal": None}


def kill_group(pgid: int, signum: int) -> None:
    """Signal a child's process group (every child is a session leader); gone already is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@dataclass(frozen=True)
class Context:
    """What every operation shares: the reaper, the app's root directory and the user cgroup."""

    reaper: Reaper
    # The chroot for ``root: "rootfs"``; None when the rootfs is "/" (tests on the host).
    rootfs: str | None
    # An fd of the user group's cgroup.procs (ember.guest._cgroup); None: children stay in the agent's group.
    user_cgroup: int | None = None

    def chroot_for(self, args: dict[str, Any]) -> str | None:
        root = _args.choice_arg(args, "root", ("rootfs", "runtime"), "rootfs")
        return self.rootfs if root == "rootfs" else None


@dataclass(frozen=True)
class ProcSpec:
    """What to run and as whom, validated from an ``exec``/``app_start`` request."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    uid: int
    gid: int
    chroot: str | None
    cgroup_procs: int | None = None

    @classmethod
    def from_args(cls, args: dict[str, Any], ctx: Context) -> ProcSpec:
        return cls(argv=_args.argv_arg(args), env=_args.env_arg(args, DEFAULT_ENV),
                   cwd=_args.str_arg(args, "cwd", "/"),
                   uid=_args.int_arg(args, "uid", 0, 0, _args.MAX_ID),
                   gid=_args.int_arg(args, "gid", 0, 0, _args.MAX_ID),
                   chroot=ctx.chroot_for(args), cgroup_procs=ctx.user_cgroup)

    def candidates(self) -> list[str]:
        """Paths to try for argv[0], searched like execvp but computed before the fork."""
        prog = self.argv[0]
        if "/" in prog:
            return [prog]
        path = self.env.get("PATH", DEFAULT_PATH)
        return [os.path.join(d or ".", prog) for d in path.split(":")]


def _child(spec: ProcSpec, candidates: list[str], stdio: tuple[int, int, int], ctty: int | None,
           err_w: int) -> None:
    """Runs in the forked child: never returns, reports the failing step and errno on ``err_w``."""
    step = 0
    try:
        gc.disable()
        signal.set_wakeup_fd(-1)  # the parent's asyncio wakeup socket is not ours to write to
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        for sig in _CHILD_DEFAULT_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        if spec.cgroup_procs is not None:
            # Join the user cgroup ("0": the writer). Best effort: failing, the child runs unlimited, as before.
            with contextlib.suppress(OSError):
                os.write(spec.cgroup_procs, b"0")
        step = 1
        os.setsid()
        if ctty is not None:
            step = 2
            fcntl.ioctl(ctty, termios.TIOCSCTTY, 0)
        step = 3
        for target, fd in enumerate(stdio):
            if fd == target:
                os.set_inheritable(fd, True)
            else:
                os.dup2(fd, target)
        if spec.chroot is not None:
            step = 4
            os.chroot(spec.chroot)
        step = 5
        os.chdir(spec.cwd)
        # Without root the credentials can only stay as they are; let the kernel refuse any change.
        if os.geteuid() == 0:
            step = 6
            os.setgroups([])
        if os.getegid() != spec.gid:
            step = 7
            os.setgid(spec.gid)
        if os.geteuid() != spec.uid:
            step = 8
            os.setuid(spec.uid)
        step = 9
        first: OSError | None = None
        for path in candidates:
            try:
                os.execve(path, spec.argv, spec.env)
            except OSError as exc:
                # execvp's rule: report the first error that is not "not here".
                if first is None or (first.errno in (errno.ENOENT, errno.ENOTDIR)
                                     and exc.errno not in (errno.ENOENT, errno.ENOTDIR)):
                    first = exc
        raise first or OSError(errno.ENOENT, "not found")
    except OSError as exc:
        code = exc.errno or errno.EINVAL
    except BaseException:
        code = errno.EINVAL
    with contextlib.suppress(BaseException):
        os.write(err_w, _ERR_RECORD.pack(code, step))
    os._exit(127)


async def spawn(reaper: Reaper, spec: ProcSpec, stdio: tuple[int, int, int],
                ctty: int | None = None) -> tuple[int, asyncio.Future[int]]:
    """Fork and exec ``spec`` in a new session: (pid, future of its wait status).

    A failure before the exec (chdir, setuid, a missing program...) raises
    OSError in the parent, reported through a close-on-exec pipe like
    subprocess does. The caller still owns (and closes) the ``stdio`` fds.
    """
    candidates = spec.candidates()
    err_r, err_w = os.pipe()  # both O_CLOEXEC: a successful exec closes err_w
    try:
        pid = os.fork()
        if pid == 0:
            _child(spec, candidates, stdio, ctty, err_w)
        exit_fut = reaper.watch(pid)
        os.close(err_w)
        err_w = -1
        reader = AsyncFd(err_r)
        err_r = -1
        try:
            record = b""
            while len(record) < _ERR_RECORD.size:
                chunk = await reader.read(_ERR_RECORD.size - len(record))
                if not chunk:
                    break
                record += chunk
        except BaseException:
            # Cancelled (session reset) mid-start: nobody will own this child, so it must not run.
            if not exit_fut.done():
                os.kill(pid, signal.SIGKILL)
            raise
        finally:
            reader.close()
    finally:
        for fd in (err_r, err_w):
            if fd >= 0:
                os.close(fd)
    if len(record) == _ERR_RECORD.size:
        code, step = _ERR_RECORD.unpack(record)
        what = spec.argv[0] if _STEPS[step] == "exec" else spec.cwd if _STEPS[step] == "chdir" else ""
        raise OSError(code, f"{_STEPS[step]} failed: {os.strerror(code)}" + (f": {what!r}" if what else ""))
    return pid, exit_fut
