"""`ember shell`'s terminal bridge against the real gateway's shell WebSocket (fake PTY behind it)."""

from __future__ import annotations

import os
import pty
import termios
import threading
import time
from collections.abc import Iterator

import pytest

from ember.cli.shell import bridge, exit_code
from ember.sdk import Client
from tests.unit.sdk.fakes import FakeServer
from tests.unit.sdk.gateway_env import GatewayThread, api_for

KEY = ("AKIDSHELLTEST000001", "shell-secret")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with GatewayThread(tmp_path_factory.mktemp("tls")) as running:
        yield running


@pytest.fixture
def shell_ws(gw: GatewayThread) -> Iterator[object]:
    with FakeServer() as server:
        vm = gw.add_vm(len(gw.backend.vms) + 1, shell_ingress=True)
        api_for(server, gw, vm)
        with Client(endpoint=server.url, access_key_id=KEY[0], secret_access_key=KEY[1],
                    verify=gw.tls_dir / "ca.pem") as client:
            yield client.microvms.handle(vm.microvm_id).shell()


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # a pty master reads EIO once the slave is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def type_later(fd: int, *chunks: bytes, close: bool = True) -> threading.Thread:
    def run() -> None:
        for chunk in chunks:
            time.sleep(0.2)
            os.write(fd, chunk)
        if close:
            os.close(fd)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_piped_input_is_relayed_and_the_exit_code_returned(shell_ws: object) -> None:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    typist = type_later(in_w, b"hello\r", b"exit\n")
    code = bridge(shell_ws, in_r, out_w)
    typist.join()
    os.close(out_w)
    os.close(in_r)
    assert code == 0
    assert read_all(out_r) == b"hello\r"


def test_a_terminal_is_raw_while_connected_sized_and_restored(shell_ws: object,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("LINES", "40")
    master, slave = pty.openpty()
    out_r, out_w = os.pipe()
    before = termios.tcgetattr(slave)
    typist = type_later(master, b"exit\n", close=False)
    code = bridge(shell_ws, slave, out_w)
    typist.join()
    assert termios.tcgetattr(slave) == before
    os.close(out_w)
    assert code == 0
    assert b"[resized 100x40]" in read_all(out_r)
    os.close(master)
    os.close(slave)


def test_exit_code_from_the_close_reason() -> None:
    assert exit_code(1000, "exit 3") == 3
    assert exit_code(1000, "") == 0
    assert exit_code(1006, None) == 1
    assert exit_code(1000, "exit x") == 0
