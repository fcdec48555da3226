"""End to end through the `ember` command line: a real `ember serve` subprocess, VMs under TCG, only CLI calls.

The walk a user takes: build the code-interpreter example with hooks, run it, call it through the gateway
(state kept between calls), suspend it, call it again (the gateway resumes it: auto-resume), read its logs,
terminate it; then a shell in a second MicroVM, fed from a pipe. Every step runs `python -m ember.cli.main …`
as a subprocess, so what is tested is what a user types. Step timings are printed.

The server keeps its database, credentials, CA, images and VMs in a temporary ``EMBER_HOME``. The guest kit
and the managed bases are built once by `ember setup` in the default home and there is no setting that
points a server at them separately, so the temporary home links ``kit`` and ``bases`` to them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ember.settings import DEFAULT_HOME
from tests.framework.paths import EXAMPLES

pytestmark = pytest.mark.vm

EXAMPLE = EXAMPLES / "code-interpreter"
SHARED_HOME = Path(os.environ.get("EMBER_HOME") or DEFAULT_HOME).expanduser()
"""Where `ember setup` built the kit and the managed bases."""
START_TIMEOUT_S = 120.0
BUILD_TIMEOUT_S = 900.0
COMMAND_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 180.0
CLEARED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
               "EMBER_ROOT_ACCESS_KEY_ID", "EMBER_ROOT_SECRET_ACCESS_KEY", "EMBER_ENDPOINT", "EMBER_REGION",
               "EMBER_CA_BUNDLE", "EMBER_GATEWAY_SCHEME")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Serve:
    """The `ember serve` subprocess, its environment and everything it printed."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    port: int
    output: list[str] = field(default_factory=list)

    def log(self) -> str:
        return "".join(self.output[-200:])


def _pump(stream: object, sink: list[str]) -> None:
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        sink.append(raw.decode("utf-8", "replace"))


def _wait_listening(serve: Serve) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if serve.process.poll() is not None:
            raise AssertionError(f"ember serve exited with {serve.process.returncode}:\n{serve.log()}")
        if any("Ember" in line and "serving" in line for line in serve.output):
            return
        time.sleep(0.2)
    raise AssertionError(f"ember serve did not start within {START_TIMEOUT_S} s:\n{serve.log()}")


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    try:
        from ember.host.kit import load_kit

        load_kit(SHARED_HOME)
    except Exception as exc:
        pytest.skip(f"the guest kit is not built in {SHARED_HOME} (run `ember setup`): {exc}")
    home = tmp_path_factory.mktemp("home")
    for shared in ("kit", "bases"):
        (home / shared).symlink_to(SHARED_HOME / shared, target_is_directory=True)
    port, gateway_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update(EMBER_HOME=str(home), EMBER_ENDPOINT=f"http://127.0.0.1:{port}", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "ember.cli.main", "serve", "--port", str(port), "--gateway-port", str(gateway_port),
         "--log-level", "info"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    running = Serve(process, env, port)
    pump = threading.Thread(target=_pump, args=(process.stdout, running.output), daemon=True)
    pump.start()
    try:
        _wait_listening(running)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
        pump.join(10)
        assert process.stdout is not None
        process.stdout.close()


def ember(serve: Serve, *args: str, timeout: float = COMMAND_TIMEOUT_S,
          ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ember ARGS…` against the server; with ``ok`` fail the test (showing the server log) unless it exits 0."""
    result = subprocess.run([sys.executable, "-m", "ember.cli.main", *args], env=serve.env, capture_output=True,
                            text=True, timeout=timeout)
    if ok and result.returncode != 0:
        pytest.fail(f"`ember {' '.join(args)}` exited {result.returncode}\n--- stdout ---\n{result.stdout}\n"
                    f"--- stderr ---\n{result.stderr}\n--- ember serve ---\n{serve.log()}")
    return result


def test_build_run_call_suspend_autoresume_logs_terminate(serve: Serve) -> None:
    timings: dict[str, float] = {}

    creds = json.loads(ember(serve, "credentials", "--json").stdout)
    assert creds["accessKeyId"] and creds["region"] == "us-east-1"
    serve.env["EMBER_CA_BUNDLE"] = ember(serve, "ca").stdout.strip()

    t0 = time.monotonic()
    built = ember(serve, "image", "build", str(EXAMPLE), "--name", "ci", "--port", "8080",
                  "--hooks", "ready,validate,run,resume,suspend", "--wait", timeout=BUILD_TIMEOUT_S)
    timings["image build --wait"] = time.monotonic() - t0
    assert "ci version 1 SUCCESSFUL" in built.stderr

    t0 = time.monotonic()
    vm_id = ember(serve, "run", "ci", "--wait").stdout.strip()
    timings["run --wait"] = time.monotonic() - t0
    assert vm_id.startswith("mvm-")

    t0 = time.monotonic()
    first = ember(serve, "call", vm_id, "/execute", "-X", "POST", "-d", '{"code": "x = 41"}')
    timings["first call"] = time.monotonic() - t0
    assert "HTTP 200" in first.stderr and json.loads(first.stdout)["error"] is None
    second = json.loads(ember(serve, "call", vm_id, "/execute", "-d", '{"code": "print(x + 1)"}').stdout)
    assert second == {"stdout": "42\n", "error": None}

    t0 = time.monotonic()
    ember(serve, "suspend", vm_id, "--wait")
    timings["suspend --wait"] = time.monotonic() - t0
    assert json.loads(ember(serve, "get", vm_id, "--json").stdout)["state"] == "SUSPENDED"

    t0 = time.monotonic()
    state = ember(serve, "call", vm_id, "/state")  # the gateway resumes the VM (auto-resume) and serves it
    timings["call a SUSPENDED VM (auto-resume)"] = time.monotonic() - t0
    assert "HTTP 200" in state.stderr
    body = json.loads(state.stdout)
    assert body["executions"] == 2  # the namespace survived the suspend
    assert body["hooks"].get("resume", 0) >= 1 and body["hooks"].get("suspend", 0) >= 1
    assert json.loads(ember(serve, "get", vm_id, "--json").stdout)["state"] == "RUNNING"
    kept = json.loads(ember(serve, "call", vm_id, "/execute", "-d", '{"code": "print(x)"}').stdout)
    assert kept["stdout"] == "41\n"

    logs = ember(serve, "logs", vm_id).stdout
    assert "code interpreter listening on 8080" in logs

    t0 = time.monotonic()
    ember(serve, "terminate", vm_id, "--wait")
    timings["terminate --wait"] = time.monotonic() - t0
    assert vm_id not in ember(serve, "ls").stdout
    assert vm_id in ember(serve, "ls", "--all").stdout
    gone = ember(serve, "call", vm_id, "/state", ok=False)
    assert gone.returncode != 0 and "Traceback" not in gone.stderr

    shell_vm = ember(serve, "run", "ci", "--shell", "--wait").stdout.strip()
    t0 = time.monotonic()
    shell = subprocess.run([sys.executable, "-m", "ember.cli.main", "shell", shell_vm], env=serve.env,
                           input="echo answer=$((6 * 7))\nexit 3\n", capture_output=True, text=True,
                           timeout=COMMAND_TIMEOUT_S)
    timings["shell (piped, exit 3)"] = time.monotonic() - t0
    assert shell.returncode == 3, shell.stderr
    assert "answer=42" in shell.stdout
    ember(serve, "terminate", shell_vm)
    print("\n" + "\n".join(f"{step}: {seconds:.1f} s" for step, seconds in timings.items()))
