"""The world of the attacks from inside a guest (``test_guest.py``): VMs on a real Host, a real server, switches.

One image (the test rootfs, 512 MiB, 2 vCPUs) is booted once; every attacker is a fresh clone of it. The victim
B is a long-lived clone with egress running ``VICTIM_APP``, which records every TCP connection to its
0.0.0.0:8080 and every UDP datagram to its port 5353 (it also sends a datagram out every few seconds, so user-mode
NAT keeps a UDP socket open for it on the host side: a door another guest could knock on). A real ``ember serve``
(API and TLS gateway, no VMs) listens on the host's loopback, as in production.

A "protection off" switch changes exactly one thing for one VM and is undone at once: the VMs already running
keep what they were started with. None of these switches exists in production code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import ember.host.egress as egress_mod
import ember.host.host as host_mod
from ember.host.agent_client import AgentClient
from ember.host.egress import EgressConfig, ensure_egress, teardown_egress
from ember.host.host import VM, Host, ImageSnapshot
from ember.host.kit import load_kit, test_rootfs
from ember.server import ServeSettings
from ember.vmm import Drive, jail
from tests.framework.server import ServerThread, free_port
from tests.framework.vms import qemu_pids_under

MEMORY_MIB = 512
VCPUS = 2
VICTIM_TCP_PORT = 8080
VICTIM_UDP_PORT = 5353
VICTIM_LOG = "/tmp/victim.log"
# A network of its own for the runs with the nftables guard off (never production's ember-egress, nor
# tests/vm/test_egress.py's ember-egtest).
UNGUARDED = EgressConfig(netns="ember-egsec", host_if="ember-egs0", ns_if="ember-egs1", subnet="10.231.0.8/30",
                         table="ember_egsec")

VICTIM_APP = r"""
import json, socket, threading, time
LOG = "/tmp/victim.log"
open(LOG, "w").close()

def record(kind, peer):
    with open(LOG, "a") as f:
        f.write(json.dumps([kind, peer]) + "\n")

def tcp():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080))
    s.listen(64)
    while True:
        c, peer = s.accept()
        record("tcp", peer[0])
        c.close()

def beacon(u):
    while True:
        try:
            u.sendto(b"beacon", ("198.51.100.1", 9))  # TEST-NET-2: goes nowhere, but opens NAT's socket
        except OSError:
            pass
        time.sleep(5)

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 5353))
threading.Thread(target=tcp, daemon=True).start()
threading.Thread(target=beacon, args=(u,), daemon=True).start()
print("ready", flush=True)
while True:
    data, peer = u.recvfrom(2048)
    record("udp", peer[0])
"""

UDP_KNOCK = r"""
import json, socket, sys, time
out = {}
for host, port in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(3):
            s.sendto(b"knock", (host, port))
            time.sleep(0.1)
        out[f"{host}:{port}"] = "sent"
    except OSError as e:
        out[f"{host}:{port}"] = f"{type(e).__name__} errno={e.errno}"
    s.close()
print(json.dumps(out))
"""


# -- the Host, the image and the victim --------------------------------------------------
@pytest.fixture(scope="module")
def kit():  # type: ignore[no-untyped-def]
    return load_kit()


@pytest.fixture(scope="module")
async def vm_host(tmp_path_factory: pytest.TempPathFactory, kit) -> AsyncIterator[Host]:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("ember-guest-attacks")
    host = Host(home=home, kit=kit)
    yield host
    await host.close()
    assert qemu_pids_under(home) == [], "a QEMU process outlived the suite"


@pytest.fixture(scope="module")
async def image(vm_host: Host, tmp_path_factory: pytest.TempPathFactory) -> ImageSnapshot:
    """The test rootfs booted once (no egress, like every image) and frozen: attackers and victims are clones."""
    vm = await vm_host.boot(test_rootfs(), memory_mib=MEMORY_MIB, vcpus=VCPUS)
    return await vm_host.snapshot_image(vm, tmp_path_factory.mktemp("guest-attack-images") / "img")


async def start_victim(vm: VM) -> VM:
    agent = vm.require_agent()
    await agent.put_file("/root/victim.py", VICTIM_APP.encode())
    await agent.app_start(["python3", "/root/victim.py"])
    deadline = time.monotonic() + 60
    while (await agent.exec(["/bin/sh", "-c", f"test -e {VICTIM_LOG}"])).exit_code != 0:
        assert time.monotonic() < deadline, "the victim app did not start"
        await asyncio.sleep(0.2)
    return vm


@pytest.fixture(scope="module")
async def victim(vm_host: Host, image: ImageSnapshot) -> AsyncIterator[VM]:
    """B: a clone with egress (so its NAT shares the egress namespace with any attacker's) running VICTIM_APP."""
    vm = await vm_host.clone(image, egress=True)
    try:
        yield await start_victim(vm)
    finally:
        await vm_host.destroy(vm)


async def victim_log(vm: VM) -> list[list[str]]:
    """What the victim app recorded: [kind, peer address] per connection or datagram."""
    data = await vm.require_agent().get_file(VICTIM_LOG)
    return [json.loads(line) for line in data.decode().splitlines() if line]


@contextlib.asynccontextmanager
async def attacker(host: Host, image: ImageSnapshot, *, egress: bool = False) -> AsyncIterator[VM]:
    """A fresh clone for one attack, destroyed afterwards whatever state the attack left it in."""
    vm = await host.clone(image, egress=egress)
    try:
        yield vm
    finally:
        await host.destroy(vm)


# -- the real server --------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A real ``ember serve`` (API + TLS gateway) on the host's 127.0.0.1, with no VMs of its own."""
    serve = ServerThread(ServeSettings(home=tmp_path_factory.mktemp("ember-serve"), api_port=free_port(),
                                       gateway_port=free_port()))
    serve.start()
    yield serve
    serve.stop()


def api_port(serve: ServerThread) -> int:
    return serve.server.settings.api_port


def gateway_port(serve: ServerThread) -> int:
    port = serve.server.gateway_port
    assert port is not None
    return port


def api_latency_s(serve: ServerThread) -> float:
    """Seconds for the real API to answer an unsigned request (with its refusal)."""
    t0 = time.monotonic()
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{api_port(serve)}/2025-09-09/microvms", timeout=30).close()
    except urllib.error.HTTPError as exc:
        exc.close()
    return time.monotonic() - t0


# -- measurements -----------------------------------------------------------------------
async def exec_rtt_s(agent: AgentClient, n: int = 5) -> float:
    """Median seconds for the guest to run ``/bin/true`` through the agent (fork, exec, wait, answer)."""
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        res = await agent.exec(["/bin/true"], timeout=60)
        assert res.exit_code == 0
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def qemu_rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) >> 10
    raise AssertionError(f"no VmRSS for pid {pid}")


def qemu_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vmm_memory_cgroup(vm: VM) -> dict[str, int] | None:
    """The VMM cgroup's memory limit and peak (bytes), or None when the jail gave it none."""
    conf = jail.confinement()
    dirs = jail.cgroup_dirs(jail.jail_name(vm.dir), conf.cgroup)
    if conf.cgroup == "v2":
        cg = dirs[0]
        peak = cg / "memory.peak"
        return {"limit": int((cg / "memory.max").read_text()),
                "peak": int(peak.read_text()) if peak.exists() else int((cg / "memory.current").read_text())}
    if conf.cgroup == "v1":
        cg = dirs[0]
        return {"limit": int((cg / "memory.limit_in_bytes").read_text()),
                "peak": int((cg / "memory.max_usage_in_bytes").read_text())}
    return None


async def guest_user_cgroup(agent: AgentClient) -> dict[str, dict[str, int]]:
    """The agent's user cgroup counters (``ember.guest._cgroup``): memory.events and pids.events."""
    out: dict[str, dict[str, int]] = {}
    for name in ("memory.events", "pids.events"):
        text = (await agent.get_file(f"/sys/fs/cgroup/user/{name}", root="runtime")).decode()
        out[name] = {k: int(v) for k, v in (line.split() for line in text.splitlines())}
    return out


# -- switches ----------------------------------------------------------------------------
@contextlib.contextmanager
def vmm_jail_off() -> Iterator[None]:
    """VMMs started inside this block run unconfined (``EMBER_VMM_JAIL=off``): host uid and namespaces."""
    before = os.environ.get("EMBER_VMM_JAIL")
    os.environ["EMBER_VMM_JAIL"] = "off"
    jail.confinement.cache_clear()
    try:
        yield
    finally:
        if before is None:
            del os.environ["EMBER_VMM_JAIL"]
        else:
            os.environ["EMBER_VMM_JAIL"] = before
        jail.confinement.cache_clear()


@contextlib.asynccontextmanager
async def unguarded_clone(host: Host, image: ImageSnapshot, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VM]:
    """A clone with egress through UNGUARDED: a namespace like production's, built with ``protect=False``."""
    net = ensure_egress(UNGUARDED, protect=False)
    with monkeypatch.context() as m:
        m.setattr(egress_mod, "ensure_egress", lambda: net)
        vm = await host.clone(image, egress=True)
    try:
        assert vm.spec.netns == UNGUARDED.netns
        yield vm
    finally:
        await host.destroy(vm)


def teardown_unguarded() -> None:
    teardown_egress(UNGUARDED)


@contextlib.asynccontextmanager
async def host_namespace_clone(host: Host, image: ImageSnapshot,
                               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VM]:
    """A clone whose user-mode NAT runs in the host's own network namespace: no egress namespace, no jail."""

    async def in_host_namespace(egress: bool) -> dict[str, Any]:
        return {"network": "user", "netns": None} if egress else {"network": "none", "netns": None}

    with monkeypatch.context() as m, vmm_jail_off():
        m.setattr(host_mod, "machine_network", in_host_namespace)
        vm = await host.clone(image, egress=True)
    try:
        assert vm.spec.network == "user" and vm.spec.netns is None
        yield vm
    finally:
        await host.destroy(vm)


@contextlib.asynccontextmanager
async def writable_runtime_boot(host: Host, kit: Any, copy: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VM]:
    """A cold-booted VM whose runtime disk is ``copy`` attached read-write (production attaches it read-only)."""

    def drive(path: Path, fmt: str = "qcow2", read_only: bool = False, backing: Path | None = None) -> Drive:
        return Drive(path, fmt, read_only and Path(path) != copy, backing)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(host, "_kit", replace(kit, runtime_disk=copy))
        m.setattr(host_mod, "Drive", drive)
        vm = await host.boot(test_rootfs(), memory_mib=MEMORY_MIB, vcpus=VCPUS)
    try:
        assert not vm.spec.drives[0].read_only
        yield vm
    finally:
        await host.destroy(vm)


def slirp_udp_ports(netns: str, pid: int) -> list[int]:
    """Local ports of the UDP sockets VMM ``pid`` holds in ``netns`` (its user-mode NAT's, one per guest flow)."""
    out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-H", "-uanp"], capture_output=True, text=True,
                         check=True).stdout
    return sorted({int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if f"pid={pid}," in line})


async def wait_slirp_udp_port(netns: str, pid: int, timeout_s: float = 15.0) -> int:
    deadline = time.monotonic() + timeout_s
    while not (ports := slirp_udp_ports(netns, pid)):
        assert time.monotonic() < deadline, f"VMM {pid} opened no UDP socket in {netns}"
        await asyncio.sleep(0.5)
    return ports[0]
