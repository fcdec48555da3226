"""The guest agent, run as a real subprocess over a socketpair and driven through protocol.Connection."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ember.guest import _app
from ember.guest import agent as agent_main
from ember.guest import protocol as p
from ember.guest._procs import Context, Reaper

REPO = Path(__file__).resolve().parents[3]
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (chroot, setuid)")
T = 10.0  # per-step timeout: a hung agent fails the test instead of the run


class Host:
    """The host's end of one agent: a Connection over a socketpair, plus the agent process."""

    def __init__(self, proc: subprocess.Popen[bytes], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.conn = p.Connection(self._write)
        self._pump = asyncio.get_running_loop().create_task(self._read_loop())

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _read_loop(self) -> None:
        try:
            while data := await self.reader.read(256 * 1024):
                await self.conn.feed(data)
        finally:
            self.conn.connection_lost(None)

    async def hello(self, session: str = "t") -> dict[str, Any]:
        self.conn.hello = asyncio.get_running_loop().create_future()
        await self.conn.send(p.HELLO, 0, 0, p.encode_json({"session": session}))
        return (await asyncio.wait_for(self.conn.hello, T)).json()

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """One request, one answer; the channel must then be closed by the agent."""
        ch = await self.conn.open(op, **args)
        msg = await asyncio.wait_for(ch.recv_msg(), T)
        assert (await asyncio.wait_for(ch.recv(), T)).type == p.CLOSE
        await ch.close()
        return msg

    async def error(self, op: str, **args: Any) -> p.ChannelError:
        ch = await self.conn.open(op, **args)
        with pytest.raises(p.ChannelError) as info:
            await asyncio.wait_for(ch.recv_msg(), T)
        return info.value

    async def run(self, argv: list[str], stdin: bytes | None = None, **args: Any) -> dict[str, Any]:
        """exec to completion: {"pid", "out", "err", "exit", "signal"}; checks the closing sequence."""
        ch = await self.conn.open("exec", argv=argv, stdin=stdin is not None, **args)
        pid = (await asyncio.wait_for(ch.recv_msg(), T))["pid"]

        async def feed() -> None:
            if stdin is not None:
                await ch.send_data(stdin)
                await ch.send_eof()

        feeder = asyncio.create_task(feed())
        out = {1: bytearray(), 2: bytearray()}
        eofs: list[int] = []
        while True:
            frame = await asyncio.wait_for(ch.recv(), T)
            if frame.type == p.DATA:
                assert not eofs
                out[frame.flags] += frame.payload
            elif frame.type == p.EOF:
                eofs.append(frame.flags)
            elif frame.type == p.MSG:
                result = frame.json()
            elif frame.type == p.CLOSE:
                break
        await feeder
        assert eofs == [1, 2]
        await ch.close()
        return {"pid": pid, "out": bytes(out[1]), "err": bytes(out[2]), **result}

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._pump, T)


async def start_agent(rootfs: str = "/") -> Host:
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-m", "ember.guest.agent", "--fd", str(theirs.fileno()),
                             "--rootfs", rootfs, "--exit-on-eof"], pass_fds=[theirs.fileno()], cwd=REPO)
    theirs.close()
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    return Host(proc, reader, writer)


async def stop_agent(host: Host) -> None:
    """Close the host end; the agent must then exit cleanly (it is killed if it does not)."""
    try:
        await host.close()
        await asyncio.wait_for(asyncio.to_thread(host.proc.wait), T)
    except BaseException:
        host.proc.kill()
        host.proc.wait()
        raise
    assert host.proc.returncode == 0, "the agent did not exit cleanly at EOF"


@pytest.fixture
async def agent() -> AsyncIterator[Host]:
    host = await start_agent()
    try:
        info = await host.hello()
        assert info["session"] == "t" and info["protocol"] == p.PROTOCOL_VERSION
        yield host
    finally:
        await stop_agent(host)


def gone(pid: int) -> bool:
    """Dead: no such process, or a zombie (an orphan waits for the test host's init to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


async def wait_until(cond: Any, timeout: float = T) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# -- basics ------------------------------------------------------------------------
async def test_ping_and_version(agent: Host) -> None:
    before = time.time_ns()
    msg = await agent.call("ping")
    assert msg["pong"] is True and msg["time_ns"] >= before
    version = await agent.call("version")
    assert version["protocol"] == p.PROTOCOL_VERSION and isinstance(version["agent"], str)


async def test_unknown_op_and_bad_args(agent: Host) -> None:
    err = await agent.error("frobnicate")
    assert err.code == "unknown_op" and "frobnicate" in err.message
    for op, args, field in [("exec", {"argv": "echo hi"}, "argv"), ("exec", {"argv": []}, "argv"),
                            ("exec", {"argv": ["true"], "uid": True}, "uid"),
                            ("exec", {"argv": ["true"], "env": {"A": 1}}, "env"),
                            ("exec", {"argv": ["true"], "root": "elsewhere"}, "root"),
                            ("stream", {"port": 0}, "port"), ("stream", {"port": "80"}, "port"),
                            ("file_put", {"path": "relative"}, "path"),
                            ("clock_set", {"realtime_ns": "soon"}, "realtime_ns"),
                            ("entropy_add", {"data": "!!!"}, "data"),
                            ("app_logs", {"since": -1}, "since")]:
        err = await agent.error(op, **args)
        assert err.code == "bad_args" and field in err.message, (op, args, err)
    assert (await agent.call("ping"))["pong"]


async def test_garbage_and_malformed_frames_are_survived(agent: Host) -> None:
    agent.writer.write(b"\x00garbage that is not a frame" * 20)
    # A well-formed header whose OPEN payload is not JSON.
    ch = p.Channel(agent.conn, 77)
    agent.conn._channels[77] = ch
    await agent.conn.send(p.OPEN, 77, 0, b"{not json")
    with pytest.raises(p.ChannelError) as info:
        await asyncio.wait_for(ch.recv(), T)
    assert info.value.code == "bad_frame"
    assert any("bad_frame" in e for e in agent.conn.peer_errors)
    assert (await agent.call("ping"))["pong"]


# -- exec --------------------------------------------------------------------------
async def test_exec_echo(agent: Host) -> None:
    result = await agent.run(["echo", "hi"])
    assert result["out"] == b"hi\n" and result["err"] == b""
    assert (result["exit"], result["signal"]) == (0, None)


async def test_exec_failure_env_cwd(agent: Host, tmp_path: Path) -> None:
    result = await agent.run(["sh", "-c", "echo oops >&2; exit 3"])
    assert (result["out"], result["err"], result["exit"], result["signal"]) == (b"", b"oops\n", 3, None)
    result = await agent.run(["sh", "-c", 'echo "$FOO:$PWD"'], env={"FOO": "bar", "PATH": "/usr/bin:/bin"},
                             cwd=str(tmp_path))
    assert result["out"] == f"bar:{tmp_path}\n".encode()
    result = await agent.run(["sh", "-c", "echo $PATH $HOME"])
    assert result["out"] == b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /root\n"


async def test_exec_missing_binary_and_cwd(agent: Host) -> None:
    assert (await agent.error("exec", argv=["/nonexistent/prog"])).code == "ENOENT"
    assert (await agent.error("exec", argv=["no-such-command-ember"])).code == "ENOENT"
    err = await agent.error("exec", argv=["true"], cwd="/nonexistent-dir")
    assert err.code == "ENOENT" and "chdir" in err.message


async def test_exec_stdin_round_trip_5mib(agent: Host) -> None:
    data = os.urandom(5 << 20)
    result = await agent.run(["cat"], stdin=data)
    assert result["exit"] == 0
    assert len(result["out"]) == len(data) and result["out"] == data


async def test_exec_signal(agent: Host) -> None:
    ch = await agent.conn.open("exec", argv=["sleep", "100"])
    await asyncio.wait_for(ch.recv_msg(), T)
    await ch.send_msg({"signal": 15})
    frames = []
    while (frame := await asyncio.wait_for(ch.recv(), T)).type != p.CLOSE:
        frames.append(frame)
    assert [(f.type, f.flags) for f in frames[:2]] == [(p.EOF, 1), (p.EOF, 2)]
    assert frames[2].json() == {"exit": None, "signal": 15}


async def test_exec_host_close_kills_process_group(agent: Host) -> None:
    ch = await agent.conn.open("exec", argv=["sh", "-c", "sleep 100 & echo $!; wait"])
    pid = (await asyncio.wait_for(ch.recv_msg(), T))["pid"]
    child = int((await asyncio.wait_for(ch.recv(), T)).payload)
    await ch.close()

    async def both_gone() -> bool:
        return gone(pid) and gone(child)

    await wait_until(both_gone)


async def test_exec_pty_size_and_resize(agent: Host) -> None:
    ch = await agent.conn.open("exec", argv=["sh", "-c", "stty size; read line; stty size"],
                               pty={"cols": 100, "rows": 40})
    await asyncio.wait_for(ch.recv_msg(), T)
    out = bytearray()

    async def read_until(marker: bytes) -> None:
        while marker not in out:
            frame = await asyncio.wait_for(ch.recv(), T)
            assert frame.type == p.DATA and frame.flags == 1, frame
            out.extend(frame.payload)

    await read_until(b"40 100")
    await ch.send_msg({"resize": [120, 50]})
    await ch.send_data(b"\n")
    await read_until(b"50 120")
    while (frame := await asyncio.wait_for(ch.recv(), T)).type != p.MSG:
        pass
    assert frame.json()["exit"] == 0


async def test_exec_host_close_while_stdin_blocked(agent: Host) -> None:
    # The process never reads stdin: the agent is stuck writing to it when the host lets go.
    ch = await agent.conn.open("exec", argv=["sleep", "100"], stdin=True)
    pid = (await asyncio.wait_for(ch.recv_msg(), T))["pid"]
    sender = asyncio.create_task(ch.send_data(bytes(2 << 20)))
    await asyncio.sleep(0.2)
    await ch.close()

    async def killed() -> bool:
        return gone(pid)

    await wait_until(killed, 3.0)
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError, p.ChannelClosed):
        await sender


async def test_exec_pty_eof_is_ctrl_d(agent: Host) -> None:
    ch = await agent.conn.open("exec", argv=["cat"], pty={"cols": 80, "rows": 24}, stdin=True)
    await asyncio.wait_for(ch.recv_msg(), T)
    await ch.send_data(b"abc\n")
    await ch.send_eof()
    out = bytearray()
    while (frame := await asyncio.wait_for(ch.recv(), T)).type != p.MSG:
        out += frame.payload if frame.type == p.DATA else b""
    assert frame.json() == {"exit": 0, "signal": None}
    assert out.count(b"abc") == 2  # the terminal's echo, then cat's copy


@needs_root
async def test_exec_credentials(agent: Host) -> None:
    result = await agent.run(["sh", "-c", "id -u; id -g; id -G"], uid=65534, gid=65534)
    assert result["out"].split() == [b"65534", b"65534", b"65534"]


# -- streams -----------------------------------------------------------------------
async def test_streams_concurrent_half_close() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()  # after the client's half-close: everything was echoed

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    host = await start_agent()
    try:
        await host.hello()

        async def one() -> None:
            data = os.urandom(2 << 20)
            ch = await host.conn.open("stream", port=port)
            assert await asyncio.wait_for(ch.recv_msg(), T) == {"connected": True}

            async def send() -> None:
                for i in range(0, len(data), 100_000):
                    await ch.send_data(data[i:i + 100_000])
                await ch.send_eof()

            sender = asyncio.create_task(send())
            got = bytearray()
            while (frame := await asyncio.wait_for(ch.recv(), T)).type == p.DATA:
                got += frame.payload
            assert frame.type == p.EOF
            assert (await asyncio.wait_for(ch.recv(), T)).type == p.CLOSE
            await sender
            await ch.close()
            assert got == data

        await asyncio.gather(*(one() for _ in range(10)))
        assert (await host.call("ping"))["pong"]
    finally:
        await stop_agent(host)
        server.close()
        await server.wait_closed()


async def test_stream_refused(agent: Host) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: refused
        assert (await agent.error("stream", port=port)).code == "ECONNREFUSED"


# -- files -------------------------------------------------------------------------
async def put(host: Host, path: str, data: bytes, **args: Any) -> dict[str, Any]:
    ch = await host.conn.open("file_put", path=path, **args)
    assert await asyncio.wait_for(ch.recv_msg(), T) == {"ready": True}
    await ch.send_data(data)
    await ch.send_eof()
    msg = await asyncio.wait_for(ch.recv_msg(), T)
    await ch.close()
    return msg


async def get(host: Host, path: str, **args: Any) -> tuple[dict[str, Any], bytes]:
    ch = await host.conn.open("file_get", path=path, **args)
    head = await asyncio.wait_for(ch.recv_msg(), T)
    data = bytearray()
    while (frame := await asyncio.wait_for(ch.recv(), T)).type == p.DATA:
        data += frame.payload
    assert frame.type == p.EOF and frame.flags == 1
    assert (await asyncio.wait_for(ch.recv(), T)).type == p.CLOSE
    return head, bytes(data)


async def test_file_put_get_round_trip(agent: Host, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    target = tmp_path / "f.bin"
    assert await put(agent, str(target), data, mode=0o640) == {"size": len(data)}
    assert target.read_bytes() == data and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert await put(agent, str(target), b"new", mode=0o600) == {"size": 3}  # replaces
    head, got = await get(agent, str(target))
    assert (head, got) == ({"size": 3, "mode": 0o600}, b"new")
    assert [f.name for f in tmp_path.iterdir()] == ["f.bin"]  # no temporary left behind
    assert (await agent.error("file_get", path=str(tmp_path / "missing"))).code == "ENOENT"
    assert (await agent.error("file_put", path=str(tmp_path / "no" / "x"))).code == "ENOENT"
    assert (await agent.error("file_get", path=str(tmp_path))).code == "EISDIR"


@needs_root
async def test_files_and_exec_inside_rootfs(tmp_path: Path) -> None:
    busybox = shutil.which("busybox")
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hostname").write_text("inside\n")
    (rootfs / "escape").symlink_to("/")  # absolute: must resolve inside the rootfs
    host = await start_agent(str(rootfs))
    try:
        await host.hello()
        _, data = await get(host, "/escape/etc/hostname")
        assert data == b"inside\n"
        await put(host, "/escape/etc/new", b"x", uid=123, gid=456)
        st = (rootfs / "etc" / "new").stat()
        assert (st.st_uid, st.st_gid) == (123, 456)
        _, data = await get(host, str(rootfs / "etc" / "hostname"), root="runtime")
        assert data == b"inside\n"
        assert (await host.error("file_get", path="/escape/../../../etc/passwd")).code == "ENOENT"
        if busybox:
            (rootfs / "bin").mkdir()
            shutil.copy(busybox, rootfs / "bin" / "busybox")
            result = await host.run(["/bin/busybox", "cat", "/etc/hostname"])
            assert result["out"] == b"inside\n"
    finally:
        await stop_agent(host)


# -- the app -----------------------------------------------------------------------
async def logs(host: Host, since: int = 0) -> list[dict[str, Any]]:
    ch = await host.conn.open("app_logs", since=since)
    lines = []
    while (frame := await asyncio.wait_for(ch.recv(), T)).type == p.MSG:
        lines.append(frame.json())
    assert frame.type == p.CLOSE
    return lines


async def test_app_lifecycle(agent: Host, tmp_path: Path) -> None:
    assert (await agent.error("app_stop")).code == "not_found"
    trigger = tmp_path / "go"
    script = f"echo one; echo two >&2; echo three; until [ -e {trigger} ]; do sleep 0.02; done; " \
             "echo later; exec sleep 100"
    pid = (await agent.call("app_start", argv=["sh", "-c", script]))["pid"]
    assert (await agent.error("app_start", argv=["true"])).code == "busy"

    async def three_lines() -> bool:
        return (await agent.call("app_status"))["log_seq"] >= 3

    await wait_until(three_lines)
    lines = await logs(agent)
    # stdout and stderr are separate pipes: "two" may come before or after the others.
    assert [entry["seq"] for entry in lines] == [1, 2, 3]
    assert all(entry["time_ns"] > 0 for entry in lines)
    assert {entry["line"]: entry["stream"] for entry in lines} == {
        "one": "stdout", "two": "stderr", "three": "stdout"}
    assert await logs(agent, since=2) == lines[2:]

    follow = await agent.conn.open("app_logs", since=3, follow=True)
    pending = asyncio.ensure_future(follow.recv())
    done, _ = await asyncio.wait({pending}, timeout=0.2)
    assert not done  # nothing new yet: the app waits for the trigger
    trigger.touch()
    later = (await asyncio.wait_for(pending, T)).json()
    assert later["line"] == "later" and later["seq"] == 4
    await follow.close()

    status = await agent.call("app_status")
    assert status == {"running": True, "pid": pid, "exit": None, "signal": None, "log_seq": 4}
    assert await agent.call("app_stop") == {"exit": None, "signal": 15}
    status = await agent.call("app_status")
    assert status == {"running": False, "pid": pid, "exit": None, "signal": 15, "log_seq": 4}
    assert gone(pid)

    # A second app: a long line is cut into pieces; one ignoring SIGTERM is killed after the timeout.
    script = f"trap '' TERM; {shlex.quote(sys.executable)} -c \"print('x' * 40000)\"; sleep 100"
    pid = (await agent.call("app_start", argv=["sh", "-c", script]))["pid"]

    async def printed() -> bool:  # so the trap is surely set
        return (await agent.call("app_status"))["log_seq"] >= 7

    await wait_until(printed)
    assert await agent.call("app_stop", timeout_s=0.3) == {"exit": None, "signal": 9}
    assert [len(entry["line"]) for entry in await logs(agent, since=4)] == [16384, 16384, 7232]
    assert gone(pid)


# -- sessions ----------------------------------------------------------------------
async def test_second_hello_resets_session(agent: Host) -> None:
    ch = await agent.conn.open("exec", argv=["sleep", "100"])
    pid = (await asyncio.wait_for(ch.recv_msg(), T))["pid"]
    assert not gone(pid)
    info = await agent.hello("second")
    assert info["session"] == "second"

    async def killed() -> bool:
        return gone(pid)

    await wait_until(killed)
    assert (await agent.call("ping"))["pong"]
    # Nothing about the old session's channels may reach the new one (it could reuse their ids).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ch.recv(), 0.3)


async def test_eof_without_exit_on_eof_resets_and_keeps_serving() -> None:
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-m", "ember.guest.agent", "--fd", str(theirs.fileno()),
                             "--rootfs", "/"], pass_fds=[theirs.fileno()], cwd=REPO)
    theirs.close()
    try:
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        host = Host(proc, reader, writer)
        await host.hello()
        ch = await host.conn.open("exec", argv=["sleep", "100"])
        pid = (await asyncio.wait_for(ch.recv_msg(), T))["pid"]
        ours.shutdown(socket.SHUT_WR)  # the agent reads EOF, as from a port with no host

        async def killed() -> bool:
            return gone(pid)

        await wait_until(killed)
        await asyncio.sleep(0.3)
        assert proc.poll() is None  # PID 1 must not exit; it waits for the next host
        proc.send_signal(15)  # ignored, as by init
        await asyncio.sleep(0.2)
        assert proc.poll() is None
        await host.close()
    finally:
        proc.kill()
        proc.wait()
        ours.close()


async def test_entropy_add(agent: Host) -> None:
    data = base64.b64encode(os.urandom(64)).decode()
    if IS_ROOT:
        assert await agent.call("entropy_add", data=data) == {"bits": 512}
    else:
        assert (await agent.error("entropy_add", data=data)).code == "EPERM"
    err = await agent.error("entropy_add", data=base64.b64encode(bytes(4097)).decode())
    assert err.code == "bad_args"


# -- in-process pieces ---------------------------------------------------------------
def test_find_port(tmp_path: Path) -> None:
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    for port, name in (("vport0p0", "org.qemu.guest_agent.0"), ("vport1p1", "ember.agent")):
        (sysfs / port).mkdir(parents=True)
        (sysfs / port / "name").write_text(name + "\n")
    dev.mkdir()
    with pytest.raises(RuntimeError):
        agent_main.find_port(0.0, str(sysfs), str(dev))  # listed, but no device node yet
    (dev / "vport1p1").touch()
    assert agent_main.find_port(0.0, str(sysfs), str(dev)) == str(dev / "vport1p1")


async def test_log_ring_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_app, "MAX_LINES", 5)
    monkeypatch.setattr(_app, "MAX_LOG_CHARS", 100)
    app = _app.App(Context(Reaper(), None))
    buf = bytearray(b"a\nb\n" + b"c" * 40 + b"\n" + b"\xff\n" + b"x" * 20)
    del buf[:app._emit_lines(buf, "stdout")]
    assert [e["line"] for e in app.lines] == ["a", "b", "c" * 40, "\ufffd"] and buf == b"x" * 20
    for i in range(10):
        app._emit(b"%d" % i, "stderr")
    assert [e["seq"] for e in app.lines] == [10, 11, 12, 13, 14]
    assert [e["seq"] for e in app._after(12)] == [13, 14]
    app._emit(b"y" * 100, "stdout")
    assert [e["seq"] for e in app.lines] == [15]
