"""The wire protocol: framing, resync after garbage, flow control, channel ends."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from ember.guest import protocol as p


def test_frames_round_trip_in_any_split() -> None:
    frames = [p.encode_frame(p.MSG, 3, 0, b'{"a":1}'), p.encode_frame(p.DATA, 4, 2, b"x" * 70000),
              p.encode_frame(p.EOF, 4, 2)]
    wire = b"".join(frames)
    for cut in (1, 7, 14, 15, 1000, len(wire)):
        dec = p.FrameDecoder()
        got = []
        for i in range(0, len(wire), cut):
            got += dec.feed(wire[i: i + cut])
        assert [(f.type, f.channel, f.flags, len(f.payload)) for f in got] == [
            (p.MSG, 3, 0, 7), (p.DATA, 4, 2, 70000), (p.EOF, 4, 2, 0)]
        assert dec.errors == []


def test_decoder_resyncs_after_garbage_and_counts_it() -> None:
    dec = p.FrameDecoder()
    good = p.encode_frame(p.MSG, 1, 0, b"{}")
    got = dec.feed(b"\x00garbage EM\x09" + good)
    assert [f.type for f in got] == [p.MSG]
    assert dec.errors


def test_oversized_length_is_refused_not_buffered() -> None:
    dec = p.FrameDecoder()
    header = p.HEADER.pack(p.MAGIC, p.PROTOCOL_VERSION, p.DATA, 1, 0, p.MAX_PAYLOAD_BYTES + 1)
    assert dec.feed(header + b"x" * 100) == []
    assert any("exceeds" in e for e in dec.errors)
    assert dec.feed(p.encode_frame(p.CLOSE, 1))[-1].type == p.CLOSE


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_decoder_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    dec = p.FrameDecoder()
    for frame in dec.feed(data):
        assert frame.type in p.FRAME_NAMES
        assert len(frame.payload) <= p.MAX_PAYLOAD_BYTES


def _pair(on_open: p.OpenHandler) -> tuple[p.Connection, p.Connection]:
    """Two connections wired back to back in memory."""
    host: p.Connection
    agent: p.Connection

    async def to_agent(data: bytes) -> None:
        await agent.feed(data)

    async def to_host(data: bytes) -> None:
        await host.feed(data)

    host = p.Connection(to_agent)
    agent = p.Connection(to_host, on_open=on_open)
    return host, agent


async def test_flow_control_bounds_what_a_slow_reader_queues() -> None:
    sent = asyncio.Event()

    async def producer(ch: p.Channel, args: dict) -> None:
        await ch.send_data(b"z" * (4 * p.INITIAL_WINDOW_BYTES))
        sent.set()
        await ch.send_eof()

    host, _agent = _pair(producer)
    ch = await host.open("produce")
    await asyncio.sleep(0.05)
    # Nobody read yet: the producer is stuck at one window.
    assert not sent.is_set()
    assert ch._inbox.qsize() <= p.INITIAL_WINDOW_BYTES // p.MAX_DATA_CHUNK_BYTES + 1
    total = 0
    while True:
        frame = await ch.recv()
        if frame.type == p.DATA:
            total += len(frame.payload)
        elif frame.type in (p.EOF, p.CLOSE):
            break
    assert total == 4 * p.INITIAL_WINDOW_BYTES
    assert sent.is_set()


async def test_handler_exception_becomes_an_error_frame() -> None:
    async def broken(ch: p.Channel, args: dict) -> None:
        raise RuntimeError("boom")

    host, _agent = _pair(broken)
    ch = await host.open("anything")
    try:
        await ch.recv()
    except p.ChannelError as exc:
        assert exc.code == "internal" and "boom" in exc.message
    else:
        raise AssertionError("no error frame")


async def test_connection_loss_wakes_every_waiter() -> None:
    async def idle(ch: p.Channel, args: dict) -> None:
        await asyncio.sleep(3600)

    host, _agent = _pair(idle)
    chans = [await host.open("idle") for _ in range(3)]
    waiters = [asyncio.create_task(c.recv()) for c in chans]
    await asyncio.sleep(0)
    host.connection_lost(None)
    for w in waiters:
        try:
            await w
        except p.ChannelClosed:
            pass
        else:
            raise AssertionError("waiter not woken")
    _agent.reset()
