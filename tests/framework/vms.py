"""Helpers for tests that boot real VMs (like Firecracker's framework/microvm.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from ember.host.agent_client import AgentClient

APP_READY_TIMEOUT_S = 120.0


async def read_stream(agent: AgentClient, port: int) -> bytes:
    """Connect to ``port`` in the guest and read until it closes."""
    stream = await agent.open_stream(port)
    out = bytearray()
    while chunk := await stream.read():
        out += chunk
    await stream.close()
    return bytes(out)


async def counter_info(agent: AgentClient) -> tuple[int, int, int]:
    """(pid, counter, token) from the test app's port 7001."""
    pid, counter, token = (await read_stream(agent, 7001)).split()
    return int(pid), int(counter), int(token)


async def wait_app_ready(agent: AgentClient, port: int = 7001) -> None:
    deadline = asyncio.get_running_loop().time() + APP_READY_TIMEOUT_S
    while True:
        try:
            await read_stream(agent, port)
            return
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def qemu_pids_under(path: Path) -> list[int]:
    """Live QEMU processes whose command line mentions ``path``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmdline and str(path).encode() in cmdline:
            pids.append(int(entry))
    return pids


async def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass; its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()
