"""`ember demo`: Ember's main job, end to end, through the public API and gateway, with timings.

Starts `ember serve` in the background unless one answers already, builds the
code-interpreter example into an image, runs a MicroVM from it, calls it,
suspends and resumes it (explicitly, then by a request), and prints how long
each step took. The server keeps running afterwards; the demo says how to stop it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ember.cli.main import friendly_errors
from ember.settings import ember_home

API_PORT = 9180
SERVE_START_TIMEOUT_S = 120.0
DEMO_IMAGE = "code-interpreter"
HOOKS = ["ready", "validate", "run", "resume", "suspend"]


def default_app_dir() -> Path | None:
    """The code-interpreter example in ``../shared/examples`` beside this checkout, when there is one."""
    root = Path(__file__).resolve().parents[2]
    candidate = root.parent / "shared" / "examples" / "code-interpreter"
    return candidate if (candidate / "Dockerfile").is_file() else None


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def ensure_server(console: Console, port: int) -> int | None:
    """The pid of the `ember serve` this demo started, or None when one was already answering."""
    if _healthy(port):
        console.print(f"[green]✓[/] ember serve already answers on 127.0.0.1:{port}")
        return None
    home = ember_home()
    log_path = home / "serve.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ember.cli.main", "serve", "--port", str(port)],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    (home / "serve.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + SERVE_START_TIMEOUT_S
    with console.status("starting ember serve …"):
        while not _healthy(port):
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise click.ClickException(f"ember serve exited with status {proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise click.ClickException(f"ember serve did not answer within {SERVE_START_TIMEOUT_S:.0f} s; "
                                           f"see {log_path}")
            time.sleep(0.2)
    console.print(f"[green]✓[/] started ember serve (pid {proc.pid}, log {log_path})")
    return proc.pid


class Steps:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: list[tuple[str, float, str]] = []

    def done(self, name: str, t0: float, note: str = "") -> None:
        seconds = time.perf_counter() - t0
        self.rows.append((name, seconds, note))
        self.console.print(f"[green]✓[/] {name:<38} {seconds:7.2f} s  [dim]{note}[/]", highlight=False)


def run_demo(console: Console, app_dir: Path, port: int) -> tuple[list[tuple[str, float, str]], Any]:
    from ember.sdk import Client

    started = ensure_server(console, port)
    steps = Steps(console)
    client = Client(endpoint=f"http://127.0.0.1:{port}")
    t0 = time.perf_counter()
    existing = {img.name for img in client.images.list()}
    with console.status(f"building {DEMO_IMAGE} (Dockerfile steps in a build VM, then app init and snapshot) …"):
        if DEMO_IMAGE in existing:
            response = client.images.update(DEMO_IMAGE, app_dir, hooks=HOOKS)
        else:
            response = client.images.create(DEMO_IMAGE, app_dir, hooks=HOOKS)
        client.images.wait_for_version(DEMO_IMAGE, response.imageVersion)
    steps.done("image built (build VM, init, snapshot)", t0, f"version {response.imageVersion}")

    t0 = time.perf_counter()
    vm = client.microvms.run(DEMO_IMAGE, wait=True, payload=json.dumps({"tenant": "demo"}))
    steps.done("RunMicrovm → RUNNING", t0, vm.id)

    t0 = time.perf_counter()
    first = vm.request("POST", "/execute", json={"code": "answer = 6 * 7\nprint('set')"})
    steps.done("first request through the gateway", t0, f"HTTP {first.status_code}")

    t0 = time.perf_counter()
    vm.suspend()
    client.microvms.wait_for_state(vm.id, "SUSPENDED")
    steps.done("SuspendMicrovm → SUSPENDED", t0, "memory, disk and processes on disk; no VMM left")

    t0 = time.perf_counter()
    vm.resume()
    client.microvms.wait_for_state(vm.id, "RUNNING")
    steps.done("ResumeMicrovm → RUNNING", t0)

    t0 = time.perf_counter()
    kept = vm.request("POST", "/execute", json={"code": "print(answer)"}).json()
    steps.done("request after resume", t0, f"answer = {kept.get('stdout', '').strip()} (state kept)")

    vm.suspend()
    client.microvms.wait_for_state(vm.id, "SUSPENDED")
    t0 = time.perf_counter()
    auto = vm.request("GET", "/state").json()
    steps.done("request to a SUSPENDED VM (auto-resume)", t0,
               f"held by the gateway, resumed, served; hooks {auto.get('hooks')}")
    if kept.get("stdout", "").strip() != "42":
        raise click.ClickException(f"the VM lost its state across suspend/resume: {kept}")
    return steps.rows, (vm, started)


@click.command()
@click.option("--app", "app_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Folder with a Dockerfile to build (default: ../shared/examples/code-interpreter).")
@click.option("--port", type=int, default=API_PORT, show_default=True, envvar="EMBER_PORT",
              help="Port of the API to use (and to start `ember serve` on if nothing answers).")
@click.option("--keep/--terminate", default=True, show_default=True, help="Keep the demo MicroVM running.")
@click.option("--json", "as_json", is_flag=True, help="Print the timings as JSON.")
@friendly_errors
def demo(app_dir: Path | None, port: int, keep: bool, as_json: bool) -> None:
    """Build an image, run a MicroVM, call it, suspend and resume it, with timings.

    Starts `ember serve` in the background unless one already answers on
    --port, builds the code-interpreter example through the API, runs a
    MicroVM from it and calls it through the gateway, then suspends and
    resumes it twice: explicitly, and by sending a request to the suspended
    VM (the gateway holds it while the VM resumes). Needs `ember setup`.

    \b
    Example:
      $ ember demo
      ✓ started ember serve (pid 4242, log ~/.local/share/ember/serve.log)
      ✓ image built (build VM, init, snapshot)     31.20 s  version 1
      ✓ RunMicrovm → RUNNING                        1.40 s  mvm-…
      ...
    """
    console = Console(stderr=as_json)
    app = app_dir or default_app_dir()
    if app is None:
        raise click.ClickException("no app to build: pass --app DIR (a folder with a Dockerfile)")
    rows, (vm, started) = run_demo(console, app, port)
    if not keep:
        vm.terminate()
    if as_json:
        click.echo(json.dumps([{"step": n, "seconds": round(s, 3), "note": note} for n, s, note in rows]))
    else:
        table = Table(title="Ember demo (times under this machine's accelerator)")
        table.add_column("step")
        table.add_column("seconds", justify="right")
        for name, seconds, _ in rows:
            table.add_row(name, f"{seconds:.2f}")
        console.print(table)
    where = f"pid {started}" if started else "already running"
    console.print(f"ember serve keeps running ({where}); MicroVM {vm.id} is "
                  f"{'kept' if keep else 'terminated'}.\n"
                  f"  try:   ember call {vm.id} /state\n"
                  f"  stop:  kill {started or '$(cat ' + str(ember_home() / 'serve.pid') + ')'}"
                  f"   (running MicroVMs are suspended and resume after a restart)", highlight=False)
