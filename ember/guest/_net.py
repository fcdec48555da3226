"""The ``stream`` operation: a TCP connection inside the guest carried over one channel."""

from __future__ import annotations

import asyncio
from typing import Any

from ember.guest import _args
from ember.guest import protocol as p
from ember.guest._procs import ABORT_POLL_S, Aborted, Context, cancel_tasks

READ_CHUNK_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 30.0


async def op_stream(ctx: Context, ch: p.Channel, args: dict[str, Any]) -> None:
    port = _args.int_arg(args, "port", _args.REQUIRED, 1, 65535)
    host = _args.str_arg(args, "host", "127.0.0.1")
    if not host:
        raise _args.bad_args("host", "is empty")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise _args.os_error(exc) from None
    tasks: list[asyncio.Task[Any]] = []
    try:
        await ch.send_msg({"connected": True})
        host_eof = asyncio.Event()
        upstream = asyncio.create_task(_socket_to_host(reader, ch))
        downstream = asyncio.create_task(_host_to_socket(ch, writer, host_eof))
        both_eof = asyncio.create_task(_both_eof(upstream, host_eof))
        tasks += [upstream, downstream, both_eof]
        done, _ = await asyncio.wait({both_eof, downstream}, return_when=asyncio.FIRST_COMPLETED)
        # A failure (socket reset...) propagates and becomes the channel's ERROR.
        (both_eof if both_eof in done else downstream).result()
    finally:
        cancel_tasks(tasks)
        writer.close()


async def _both_eof(upstream: asyncio.Task[None], host_eof: asyncio.Event) -> None:
    await upstream
    await host_eof.wait()


async def _socket_to_host(reader: asyncio.StreamReader, ch: p.Channel) -> None:
    try:
        while data := await reader.read(READ_CHUNK_BYTES):
            await ch.send_data(data, p.FD_STREAM)
    except OSError as exc:
        raise _args.os_error(exc) from None
    await ch.send_eof(p.FD_STREAM)


async def _host_to_socket(ch: p.Channel, writer: asyncio.StreamWriter, host_eof: asyncio.Event) -> None:
    """Host frames until its CLOSE; DATA goes to the socket, EOF half-closes it."""
    writable = True
    while True:
        frame = await ch.recv()
        if frame.type == p.CLOSE:
            return
        if frame.flags != p.FD_STREAM:
            continue
        if frame.type == p.DATA and writable:
            try:
                writer.write(frame.payload)
                await _drain(ch, writer)
            except OSError:
                # The peer stopped reading for good: this direction is over, the other may go on.
                writable = False
                host_eof.set()
        elif frame.type == p.EOF:
            if writable and writer.can_write_eof():
                try:
                    writer.write_eof()
                except OSError:
                    writable = False
            host_eof.set()


async def _drain(ch: p.Channel, writer: asyncio.StreamWriter) -> None:
    """drain(), giving up (Aborted) if the host closes the channel while the peer is not reading."""
    drain = asyncio.ensure_future(writer.drain())
    try:
        while not drain.done():
            await asyncio.wait({drain}, timeout=ABORT_POLL_S)
            if not drain.done() and ch.closed_remote:
                raise Aborted()
        drain.result()
    finally:
        if not drain.done():
            drain.cancel()
