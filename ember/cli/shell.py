"""`ember shell`: an interactive login shell in a MicroVM, over the endpoint's shell WebSocket.

Wire protocol (CONTRACT §10): binary frames carry PTY bytes both ways; the client sends a text frame
``{"resize": [cols, rows]}`` at the start and whenever the terminal is resized; the gateway closes the
WebSocket with reason ``exit <code>`` when the shell exits. The local terminal is put in raw mode (so
Ctrl-C, arrows and tab completion reach the remote shell) and always restored on the way out.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from ember.cli._common import with_client

if TYPE_CHECKING:
    from ember.sdk import Client

READ_CHUNK_BYTES = 4096
POLL_S = 0.1
"""How often the input loop checks whether the shell ended or the terminal was resized."""
EOT = b"\x04"


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[bool]:
    """Put ``fd`` in raw mode when it is a terminal (yields whether it is); restore it however the block ends."""
    if not os.isatty(fd):
        yield False
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def exit_code(close_code: int | None, reason: str | None) -> int:
    """The shell's exit code from the close reason ``exit <code>``; else 0 for a normal close, 1 otherwise."""
    if reason and reason.startswith("exit "):
        with contextlib.suppress(ValueError, IndexError):
            return int(reason.split()[1])
    return 0 if close_code == 1000 else 1


def bridge(ws: Any, stdin_fd: int, stdout_fd: int) -> int:
    """Move bytes between the terminal and the WebSocket until the shell ends; returns its exit code."""
    from websockets.exceptions import ConnectionClosed

    done = threading.Event()
    resized = threading.Event()
    resized.set()

    def pump_output() -> None:
        try:
            for message in ws:
                os.write(stdout_fd, message if isinstance(message, bytes) else message.encode())
        except ConnectionClosed:
            pass
        finally:
            done.set()

    reader = threading.Thread(target=pump_output, name="shell-output", daemon=True)
    reader.start()
    previous = signal.signal(signal.SIGWINCH, lambda *_: resized.set()) if hasattr(signal, "SIGWINCH") else None
    with raw_terminal(stdin_fd) as is_tty:
        try:
            eof = False
            while not done.is_set():
                if is_tty and resized.is_set():
                    resized.clear()
                    cols, rows = shutil.get_terminal_size()
                    ws.send(json.dumps({"resize": [cols, rows]}))
                if eof:
                    done.wait(POLL_S)
                    continue
                ready, _, _ = select.select([stdin_fd], [], [], POLL_S)
                if ready:
                    data = os.read(stdin_fd, READ_CHUNK_BYTES)
                    if not data:
                        eof = True
                        data = EOT  # end of piped input: end the remote shell's input too
                    ws.send(data)
        except ConnectionClosed:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGWINCH, previous)
            with contextlib.suppress(Exception):
                ws.close()
            reader.join(1.0)
    return exit_code(ws.close_code, ws.close_reason)


@click.command()
@click.argument("microvm_id", metavar="ID")
@with_client
def shell(client: Client, microvm_id: str) -> None:
    """Open an interactive shell in a MicroVM.

    The MicroVM must have been run with --shell.

    Connects to the MicroVM's shell WebSocket with a shell token (bash when
    the image has it, else sh, as root in the app's filesystem). Exit the
    shell (exit or Ctrl-D) to come back; `ember shell` exits with the
    shell's exit code. Input can be piped too.

    \b
    Example:
      $ ID=$(ember run ci --shell --wait)
      $ ember shell $ID
      root@mvm-3f2a:/srv# python3 -V
      $ echo 'ls /srv' | ember shell $ID
    """
    ws = client.microvms.handle(microvm_id).shell()
    sys.exit(bridge(ws, sys.stdin.fileno(), sys.stdout.fileno()))
