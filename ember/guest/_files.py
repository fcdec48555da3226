"""The ``file_put`` and ``file_get`` operations, with paths resolved inside the app's root."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import signal
import socket
import stat
import struct
from typing import Any

from ember.guest import _args
from ember.guest import protocol as p
from ember.guest._procs import Context, Reaper

READ_CHUNK_BYTES = 64 * 1024
_ERRNO = struct.Struct("i")


async def open_in_root(reaper: Reaper, root: str | None, path: str, flags: int, mode: int = 0o600) -> int:
    """``os.open(path)`` as a process chrooted into ``root`` would see it (None: no chroot).

    Symlinks, absolute or with ``..``, then resolve inside the root just as they
    do for the app, and can never reach the runtime's files. A forked child
    does the chroot and the open and passes the fd back over a socketpair.
    """
    if root is None:
        return os.open(path, flags | os.O_CLOEXEC, mode)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        pid = os.fork()
        if pid == 0:
            _open_child(theirs, root, path, flags, mode)
        exit_fut = reaper.watch(pid)
        theirs.close()
        ours.setblocking(False)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(ours.fileno(), lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        except BaseException:
            if not exit_fut.done():
                os.kill(pid, signal.SIGKILL)
            raise
        finally:
            loop.remove_reader(ours.fileno())
        msg, fds, _, _ = socket.recv_fds(ours, 16, 1)
    if fds:
        # recvmsg() does not set close-on-exec on received fds; children must not inherit this one.
        os.set_inheritable(fds[0], False)
        return fds[0]
    if msg[:1] == b"E" and len(msg) == 1 + _ERRNO.size:
        code = _ERRNO.unpack(msg[1:])[0]
        raise OSError(code, os.strerror(code), path)
    raise OSError(errno.EIO, "the helper that opens files in the rootfs failed", path)


def _open_child(sock: socket.socket, root: str, path: str, flags: int, mode: int) -> None:
    """Forked child: never returns. Only modules already imported work here, the chroot has no stdlib."""
    code = errno.EINVAL
    try:
        gc.disable()
        signal.set_wakeup_fd(-1)
        os.chroot(root)
        os.chdir("/")
        fd = os.open(path, flags, mode)
        socket.send_fds(sock, [b"K"], [fd])
        os._exit(0)
    except OSError as exc:
        code = exc.errno or errno.EINVAL
    except BaseException:
        pass
    with contextlib.suppress(BaseException):
        sock.sendall(b"E" + _ERRNO.pack(code))
    os._exit(1)


def _split(path: str) -> tuple[str, str]:
    parent, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise _args.bad_args("path", f"{path!r} does not name a file")
    return parent or "/", name


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


async def op_file_put(ctx: Context, ch: p.Channel, args: dict[str, Any]) -> None:
    path = _args.path_arg(args, "path")
    mode = _args.int_arg(args, "mode", 0o644, 0, 0o7777)
    uid = _args.int_arg(args, "uid", 0, 0, _args.MAX_ID)
    gid = _args.int_arg(args, "gid", 0, 0, _args.MAX_ID)
    parent, name = _split(path)
    dir_fd = await open_in_root(ctx.reaper, ctx.chroot_for(args), parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # A temporary name in the same directory, so the final rename is atomic.
        tmp = f".{name}.ember-{os.urandom(6).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dir_fd)
        renamed = False
        try:
            await ch.send_msg({"ready": True})
            size = 0
            while True:
                frame = await ch.recv()
                if frame.type == p.CLOSE:
                    return  # the host gave up: leave the old file as it was
                if frame.type == p.DATA and frame.flags == p.FD_STREAM:
                    # Blocking writes to a local disk: brief, and simpler than a thread next to fork().
                    _write_all(fd, frame.payload)
                    size += len(frame.payload)
                elif frame.type == p.EOF and frame.flags == p.FD_STREAM:
                    break
            st = os.fstat(fd)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)  # after chown, which clears set-id bits
            os.fsync(fd)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            renamed = True
        finally:
            os.close(fd)
            if not renamed:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dir_fd)
        await ch.send_msg({"size": size})
    finally:
        os.close(dir_fd)


async def op_file_get(ctx: Context, ch: p.Channel, args: dict[str, Any]) -> None:
    path = _args.path_arg(args, "path")
    # O_NONBLOCK: opening a FIFO must not hang the operation.
    fd = await open_in_root(ctx.reaper, ctx.chroot_for(args), path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _args.OpError("EISDIR", f"{path} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise _args.OpError("EINVAL", f"{path} is not a regular file")
        os.set_blocking(fd, True)
        await ch.send_msg({"size": st.st_size, "mode": stat.S_IMODE(st.st_mode)})
        # Until EOF rather than st_size: /proc files say 0 and still have content.
        while data := os.read(fd, READ_CHUNK_BYTES):
            await ch.send_data(data, p.FD_STDOUT)
        await ch.send_eof(p.FD_STDOUT)
    finally:
        os.close(fd)

