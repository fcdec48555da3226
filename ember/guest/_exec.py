"""The ``exec`` operation: one command per channel, its stdio carried as DATA frames."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

from ember.guest import _args
from ember.guest import protocol as p
from ember.guest._procs import (
    AsyncFd,
    Context,
    ProcSpec,
    cancel_tasks,
    exit_info,
    kill_group,
    log,
    set_winsize,
    spawn,
)

MAX_WINSIZE = 65535


def _pty_arg(args: dict[str, Any]) -> tuple[int, int] | None:
    pty = args.get("pty")
    if pty is None:
        return None
    if not isinstance(pty, dict):
        raise _args.bad_args("pty", "expected {cols, rows} or null")
    return (_args.int_arg(pty, "cols", 80, 1, MAX_WINSIZE), _args.int_arg(pty, "rows", 24, 1, MAX_WINSIZE))


async def op_exec(ctx: Context, ch: p.Channel, args: dict[str, Any]) -> None:
    spec = ProcSpec.from_args(args, ctx)
    want_stdin = _args.bool_arg(args, "stdin", False)
    pty = _pty_arg(args)
    child_fds: list[int] = []  # the child's ends: closed in the parent once it has forked
    afds: list[AsyncFd] = []
    try:
        if pty is not None:
            master, slave = os.openpty()
            child_fds.append(slave)
            afds.append(AsyncFd(master))
            set_winsize(slave, *pty)
            stdio, ctty = (slave, slave, slave), slave
            outputs = [(afds[0], p.FD_STDOUT)]
            stdin: AsyncFd | None = afds[0]
        else:
            out_r, out_w = os.pipe()
            child_fds.append(out_w)
            afds.append(AsyncFd(out_r))
            err_r, err_w = os.pipe()
            child_fds.append(err_w)
            afds.append(AsyncFd(err_r))
            if want_stdin:
                in_r, in_w = os.pipe()
                child_fds.append(in_r)
                afds.append(AsyncFd(in_w))
                stdin = afds[2]
            else:
                in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
                child_fds.append(in_r)
                stdin = None
            stdio, ctty = (in_r, out_w, err_w), None
            outputs = [(afds[0], p.FD_STDOUT), (afds[1], p.FD_STDERR)]
        try:
            pid, exit_fut = await spawn(ctx.reaper, spec, stdio, ctty)
        finally:
            for fd in child_fds:
                os.close(fd)
            child_fds.clear()
        await _run(ch, pid, exit_fut, outputs, stdin, pty is not None)
    finally:
        for fd in child_fds:
            os.close(fd)
        for afd in afds:
            afd.close()


async def _run(ch: p.Channel, pid: int, exit_fut: asyncio.Future[int], outputs: list[tuple[AsyncFd, int]],
               stdin: AsyncFd | None, is_pty: bool) -> None:
    """Carry the process's stdio until it has exited and its output is drained, or the host lets go."""
    tasks: list[asyncio.Task[Any]] = []
    finished_cleanly = False
    try:
        await ch.send_msg({"pid": pid})
        pumps = [asyncio.create_task(_pump_output(afd, ch, fd)) for afd, fd in outputs]
        tasks += pumps
        inbound = asyncio.create_task(_pump_input(ch, pid, stdin, is_pty))
        finished = asyncio.create_task(_finished(pumps, exit_fut))
        tasks += [inbound, finished]
        done, _ = await asyncio.wait({finished, inbound}, return_when=asyncio.FIRST_COMPLETED)
        if finished in done:
            status = finished.result()
            finished_cleanly = True
            await ch.send_eof(p.FD_STDOUT)
            await ch.send_eof(p.FD_STDERR)
            await ch.send_msg(exit_info(status))
        # else: the host closed the channel or the session went away; nobody is left to talk to.
    finally:
        cancel_tasks(tasks)
        if not finished_cleanly:
            kill_group(pid, signal.SIGKILL)


async def _finished(pumps: list[asyncio.Task[None]], exit_fut: asyncio.Future[int]) -> int:
    await asyncio.gather(*pumps)
    # Shielded: the reaper's future must survive this task being cancelled.
    return await asyncio.shield(exit_fut)


async def _pump_output(src: AsyncFd, ch: p.Channel, fd: int) -> None:
    # One read at a time, awaiting credit before the next: a slow host stalls the process, not our memory.
    while data := await src.read():
        await ch.send_data(data, fd)


async def _pump_input(ch: p.Channel, pid: int, stdin: AsyncFd | None, is_pty: bool) -> None:
    """Host frames until its CLOSE: stdin bytes, EOF and control messages."""
    while True:
        frame = await ch.recv()
        if frame.type == p.CLOSE:
            return
        if frame.type == p.DATA and frame.flags == p.FD_STREAM:
            if stdin is None or stdin.closed:
                continue
            try:
                # While the child is not reading, later frames (even CLOSE) wait behind this write,
                # so it polls for the host having closed the channel meanwhile.
                await stdin.write_all(frame.payload, abort=lambda: ch.closed_remote)
            except OSError:
                # The child closed its stdin: what the host still sends has nowhere to go.
                if not is_pty:
                    stdin.close()
        elif frame.type == p.EOF and frame.flags == p.FD_STREAM and stdin is not None:
            if is_pty:
                # A terminal has no half-close; ^D is what ends input for a program reading lines.
                with contextlib.suppress(OSError):
                    await stdin.write_all(b"\x04", abort=lambda: ch.closed_remote)
            else:
                stdin.close()
        elif frame.type == p.MSG:
            _control(frame, pid, stdin if is_pty else None)


def _control(frame: p.Frame, pid: int, pty: AsyncFd | None) -> None:
    """A control message; a malformed one is logged and ignored rather than ending the command."""
    try:
        msg = frame.json()
        if "signal" in msg:
            kill_group(pid, _args.int_arg(msg, "signal", _args.REQUIRED, 1, 64))
        if "resize" in msg:
            size = msg["resize"]
            if not (isinstance(size, list) and len(size) == 2):
                raise _args.bad_args("resize", "expected [cols, rows]")
            cols = _args.int_arg({"cols": size[0]}, "cols", _args.REQUIRED, 1, MAX_WINSIZE)
            rows = _args.int_arg({"rows": size[1]}, "rows", _args.REQUIRED, 1, MAX_WINSIZE)
            if pty is not None and not pty.closed:
                set_winsize(pty.fd, cols, rows)
    except (p.ProtocolError, _args.OpError, OSError) as exc:
        log(f"exec {pid}: ignoring control message: {exc}")
