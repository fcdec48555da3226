"""`ember demo`: boot a VM serving HTTP, snapshot it, clone it, suspend and resume the clone, with timings."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ember.host.agent_client import AgentClient
from ember.host.host import Host
from ember.settings import ember_home

DEMO_PORT = 8080
# A stdlib HTTP app that keeps a counter in memory: the answers show the same process living on
# through snapshot, clone, suspend and resume.
DEMO_APP = r"""
import json, os, time
from http.server import BaseHTTPRequestHandler, HTTPServer
hits = 0
started = time.time()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        global hits
        hits += 1
        body = json.dumps({"hello": "from a microVM", "pid": os.getpid(), "hits": hits,
                           "app_uptime_s": round(time.time() - started, 1)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
print("listening on 8080", flush=True)
HTTPServer(("127.0.0.1", 8080), H).serve_forever()
"""


async def http_get(agent: AgentClient, path: str = "/") -> dict[str, Any]:
    """One HTTP/1.0 GET to the app, carried over the agent channel."""
    stream = await agent.open_stream(DEMO_PORT)
    await stream.write(f"GET {path} HTTP/1.0\r\nHost: demo\r\n\r\n".encode())
    raw = bytearray()
    while chunk := await stream.read():
        raw += chunk
    await stream.close()
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode()
    return {"status": status, **json.loads(body)}


async def _wait_ready(agent: AgentClient, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await http_get(agent)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def run_demo(console: Console) -> list[tuple[str, float, str]]:
    from ember.host.kit import test_rootfs

    home = ember_home()
    host = Host(home=home)
    timings: list[tuple[str, float, str]] = []
    image_dir = home / "demo" / "image"
    shutil.rmtree(image_dir, ignore_errors=True)
    image_dir.parent.mkdir(parents=True, exist_ok=True)

    def step(name: str, t0: float, note: str = "") -> None:
        timings.append((name, time.perf_counter() - t0, note))
        console.print(f"[green]✓[/] {name:<34} {timings[-1][1]:7.2f} s  {note}")

    try:
        console.print(f"accelerator: [bold]{host.accel.accel}[/] ({host.accel.reason})")
        t0 = time.perf_counter()
        vm = await host.boot(test_rootfs(), memory_mib=512)
        step("cold boot to agent ready", t0, vm.id)
        agent = vm.require_agent()
        t0 = time.perf_counter()
        await agent.put_file("/root/app.py", DEMO_APP.encode())
        await agent.app_start(["python3", "/root/app.py"])
        await _wait_ready(agent)
        step("app started and answering", t0)
        t0 = time.perf_counter()
        image = await host.snapshot_image(vm, image_dir)
        step("image snapshot", t0, f"state {image.state_bytes / 1024:.0f} KiB")

        t0 = time.perf_counter()
        clone = await host.clone(image)
        step("clone to agent ready", t0, clone.id)
        t0 = time.perf_counter()
        first = await http_get(clone.require_agent())
        step("first request to the clone", t0, json.dumps(first))
        t0 = time.perf_counter()
        size = await host.suspend(clone)
        step("suspend", t0, f"{size / 2**20:.0f} MiB written, no VMM process left")
        t0 = time.perf_counter()
        await host.resume(clone)
        step("resume to agent ready", t0)
        t0 = time.perf_counter()
        again = await http_get(clone.require_agent())
        step("request after resume", t0, json.dumps(again))
        if again["pid"] != first["pid"] or again["hits"] != first["hits"] + 1:
            raise click.ClickException("the app did not keep its state across suspend/resume")
    finally:
        await host.close()
        shutil.rmtree(image_dir, ignore_errors=True)
    return timings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the timings as JSON.")
def demo(as_json: bool) -> None:
    """Boot a VM serving HTTP, snapshot it, clone it, suspend and resume the clone.

    Shows each step's time and the app's answers (same process, counter kept).
    Needs `ember setup` first.

    Example:

        ember demo
    """
    console = Console(stderr=as_json)
    timings = asyncio.run(run_demo(console))
    if as_json:
        click.echo(json.dumps([{"step": n, "seconds": round(s, 4), "note": note} for n, s, note in timings]))
        return
    table = Table(title="Ember demo")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, seconds, _ in timings:
        table.add_row(name, f"{seconds:.2f}")
    console.print(table)


__all__ = ["demo"]
