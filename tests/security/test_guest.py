"""Tenant boundary, attacked from inside a guest: the network, memory, CPU, processes and disks.

Every attack runs as root in a real guest (a clone of one image; ``guest_fixtures``) against real targets: a
real ``ember serve`` on the host's loopback, canary listeners on every host address, a victim VM B that records
every connection and datagram it receives, the host's files. Each protection that a switch can turn off has a
twin test that turns it off for one VM and shows the same attack succeeding, so the protected test can fail.
``docs/security.md`` ("From inside a guest") tabulates the attacks and the numbers these tests print.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ember.host.egress as egress_mod
import ember.vmm.qemu as qemu_mod
from ember.host import disks
from ember.host.host import VM, Host, ImageSnapshot
from ember.vmm import jail
from tests.framework.network import Canary, attack, guest_json, host_addresses, host_primary_address
from tests.framework.server import ServerThread
from tests.security.guest_fixtures import (
    MEMORY_MIB,
    UDP_KNOCK,
    UNGUARDED,
    VCPUS,
    VICTIM_TCP_PORT,
    api_latency_s,
    api_port,
    attacker,
    exec_rtt_s,
    gateway_port,
    guest_user_cgroup,
    host_namespace_clone,
    image,
    kit,
    qemu_cpu_s,
    qemu_rss_mib,
    server,
    start_victim,
    teardown_unguarded,
    unguarded_clone,
    victim,
    victim_log,
    vm_host,
    vmm_jail_off,
    vmm_memory_cgroup,
    wait_slirp_udp_port,
    writable_runtime_boot,
)

pytestmark = [pytest.mark.vm, pytest.mark.skipif(os.geteuid() != 0, reason="egress and the VMM jail need root")]
__all__ = ["image", "kit", "server", "victim", "vm_host"]  # fixtures, imported for pytest

# B's exec round trip and the API's answer while A attacks: at most this many times their baseline, and never
# more than the absolute bound (TCG on 2 cores: A's vCPU threads compete with B's and with the server).
SLOWDOWN_RATIO = 5.0
VICTIM_RTT_FLOOR_S = 1.0
API_LATENCY_BOUND_S = 1.0
# The agent of a VM whose user processes run away must still answer a ping within this.
AGENT_PING_BOUND_S = 2.0
FORK_BOMB_S = 20.0
FORK_BOMB_OFF_S = 10.0
# TCG's translation cache: ember.vmm.qemu.TCG_TB_SIZE_MIB, vs QEMU's own default for 64-bit hosts.
QEMU_DEFAULT_TB_SIZE_MIB = 1024
CODE_CHURN_ROUNDS = 150
TB_SLACK_MIB = 64
# qcow2 metadata (L1/L2 tables, refcounts) of a fully written 1 GiB overlay is well under this.
QCOW2_OVERHEAD_BYTES = 16 << 20
RAW_TAIL_MIB = 8

HOG = "chunks = []\nwhile True:\n    chunks.append(b'\\x01' * (16 << 20))\n"
SPIN = "while :; do :; done"
FORK_BOMB = r"""
import os, sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        os.fork()
    except OSError:
        time.sleep(0.05)
os._exit(0)
"""
# Rewrites 1 MiB of x86 code (add rax, imm8 ... ret) and runs it, once per round: TCG translates every round
# afresh (a write to translated code invalidates it), so the VMM's translation cache keeps filling.
CODE_CHURN = r"""
import ctypes, mmap, sys, time
CHUNK = 1 << 20
m = mmap.mmap(-1, CHUNK, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
fn = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
t0 = time.monotonic()
for r in range(int(sys.argv[1])):
    m[:] = (bytes((0x48, 0x83, 0xC0, r % 127 + 1)) * ((CHUNK - 1) // 4)).ljust(CHUNK - 1, b"\x90") + b"\xc3"
    fn()
print(round(time.monotonic() - t0, 2))
"""
# Root in the guest clears the kernel's read-only flag of the runtime disk (shared by every VM) and writes to it.
RUNTIME_WRITE = r"""
import fcntl, json, mmap, os, struct
out = {}
try:
    fd = os.open("/dev/vda", os.O_RDONLY)
    fcntl.ioctl(fd, 0x125D, struct.pack("i", 0))  # BLKROSET 0
    os.close(fd)
    out["blkroset"] = "ok"
except OSError as e:
    out["blkroset"] = f"{type(e).__name__} errno={e.errno}"
buf = mmap.mmap(-1, 4096)
buf.write(b"EMBER-TAMPER" * 341)
try:
    fd = os.open("/dev/vda", os.O_RDWR | os.O_DIRECT)
    try:
        os.pwrite(fd, buf, 0)
        os.fsync(fd)
        out["write"] = "ok"
    finally:
        os.close(fd)
except OSError as e:
    out["write"] = f"{type(e).__name__} errno={e.errno}"
print(json.dumps(out))
"""
BLOCK_DEVICES = r"""
import json, os
out = {}
for name in sorted(os.listdir("/sys/block")):
    if name.startswith(("loop", "ram", "zram")):
        continue
    read = lambda f: open(f"/sys/block/{name}/{f}").read().strip()
    out[name] = {"bytes": int(read("size")) * 512, "ro": read("ro") == "1"}
print(json.dumps(out))
"""


def report(what: str, **numbers: Any) -> None:
    """One line of measurements for docs/security.md (run with -s to see them)."""
    text = ", ".join(f"{k}={v}" for k, v in numbers.items())
    print(f"\n[measured] {what}: " + " ".join(text.split()))


def refused(result: list[Any]) -> bool:
    return result[0] != "connected"


@pytest.fixture
def canary() -> Iterator[Canary]:
    """A TCP canary on every host address, IPv4 and IPv6 (it binds [::] dual-stack)."""
    c = Canary(bind="::")
    yield c
    c.close()


@pytest.fixture
def netns_canary() -> Iterator[Canary]:
    """A TCP canary inside production's egress namespace, where every egress VMM's user-mode NAT lives."""
    c = Canary(egress_mod.ensure_egress().netns)
    yield c
    c.close()


def host_targets(serve: ServerThread, canary: Canary) -> dict[tuple[str, int], str]:
    """Every way to the host a guest might try: (address, port) -> what it would reach."""
    targets = {
        ("10.0.2.2", api_port(serve)): "host 127.0.0.1 API (10.0.2.2 is NAT's alias of the VMM's loopback)",
        ("10.0.2.2", gateway_port(serve)): "host 127.0.0.1 gateway",
        ("10.0.2.2", canary.port): "host 127.0.0.1 canary",
        ("fec0::2", canary.port): "host ::1 canary (NAT's IPv6 alias)",
        ("fec0::2", api_port(serve)): "host ::1 API port",
        ("169.254.169.254", 80): "metadata service",
    }
    for addr in dict.fromkeys([host_primary_address(), *host_addresses()]):
        targets[(addr, canary.port)] = f"host address {addr} canary"
    return targets


def victim_targets(vm: VM) -> dict[tuple[str, int], str]:
    """Every TCP route towards B's app on its 0.0.0.0:8080 (B is 10.0.2.15 in its own NAT, like every guest)."""
    ns_addr = (UNGUARDED if vm.spec.netns == UNGUARDED.netns else egress_mod.DEFAULT_CONFIG).ns_addr
    return {
        ("10.0.2.15", VICTIM_TCP_PORT): "guest B's app at 10.0.2.15 (the attacker's own address)",
        ("10.0.2.2", VICTIM_TCP_PORT): "guest B's app via the NAT gateway",
        (ns_addr, VICTIM_TCP_PORT): "guest B's app via the egress namespace's address",
    }


async def knock_udp(vm: VM, victim_vm: VM) -> dict[str, str]:
    """Datagrams from ``vm`` to the host-side UDP socket that B's user-mode NAT holds open for B."""
    assert victim_vm.spec.netns is not None and victim_vm.pid is not None
    port = await wait_slirp_udp_port(victim_vm.spec.netns, victim_vm.pid)
    ns_addr = (UNGUARDED if victim_vm.spec.netns == UNGUARDED.netns else egress_mod.DEFAULT_CONFIG).ns_addr
    out = await guest_json(vm.require_agent(), UDP_KNOCK, json.dumps([["10.0.2.2", port], [ns_addr, port]]))
    return out  # type: ignore[return-value]


# -- the network --------------------------------------------------------------------------------------------
async def test_a_guest_without_egress_reaches_neither_the_host_nor_another_guest(
        vm_host: Host, image: ImageSnapshot, server: ServerThread, victim: VM, canary: Canary,
        netns_canary: Canary) -> None:
    targets = {**host_targets(server, canary), **victim_targets(victim),
               ("10.0.2.2", netns_canary.port): "egress namespace loopback canary"}
    async with attacker(vm_host, image) as a:
        assert a.spec.network == "none"
        out = await attack(a.require_agent(), list(targets))
        udp = await knock_udp(a, victim)
    await asyncio.sleep(0.5)
    report("no egress", **{f"{h}:{p}": out[f"{h}:{p}"] for h, p in targets}, udp=udp)
    assert all(refused(r) for r in out.values()), out
    assert canary.hits == [] and netns_canary.hits == []
    assert await victim_log(victim) == []


async def test_a_guest_with_egress_is_refused_the_host_the_metadata_service_and_other_guests(
        vm_host: Host, image: ImageSnapshot, server: ServerThread, victim: VM, canary: Canary,
        netns_canary: Canary) -> None:
    targets = {**host_targets(server, canary), **victim_targets(victim),
               ("10.0.2.2", netns_canary.port): "egress namespace loopback canary",
               (egress_mod.DEFAULT_CONFIG.ns_addr, netns_canary.port): "egress namespace address canary"}
    async with attacker(vm_host, image, egress=True) as a:
        assert a.spec.netns == victim.spec.netns  # the worst case: both NATs share one namespace
        out = await attack(a.require_agent(), list(targets))
        udp = await knock_udp(a, victim)
    await asyncio.sleep(0.5)
    report("egress", **{f"{h}:{p}": out[f"{h}:{p}"] for h, p in targets}, udp=udp)
    assert all(refused(r) for r in out.values()), out
    # Refused, not dropped: an IPv4 attempt fails at once (a TCP reset from the rules, or nothing listening).
    assert all(float(out[f"{h}:{p}"][1]) < 2.5 for h, p in targets if ":" not in h), out
    assert canary.hits == [] and netns_canary.hits == []
    assert await victim_log(victim) == []


async def test_without_the_nft_guard_the_hosts_addresses_and_another_guest_are_reached(
        vm_host: Host, image: ImageSnapshot, server: ServerThread, canary: Canary,
        monkeypatch: pytest.MonkeyPatch) -> None:
    primary = host_primary_address()
    try:
        async with unguarded_clone(vm_host, image, monkeypatch) as b2:
            await start_victim(b2)
            ns_canary = Canary(UNGUARDED.netns)
            try:
                async with unguarded_clone(vm_host, image, monkeypatch) as a2:
                    targets = [(primary, canary.port), (UNGUARDED.host_addr, canary.port),
                               ("10.0.2.2", ns_canary.port), ("10.0.2.2", api_port(server))]
                    out = await attack(a2.require_agent(), targets)
                    udp = await knock_udp(a2, b2)
                await asyncio.sleep(0.5)
                received = await victim_log(b2)
            finally:
                ns_canary.close()
    finally:
        teardown_unguarded()
    report("nft guard off", **{f"{h}:{p}": out[f"{h}:{p}"] for h, p in targets}, udp=udp,
           canary=canary.hits, ns_canary=ns_canary.hits, victim=received)
    for h, p in targets[:3]:
        assert out[f"{h}:{p}"][0] == "connected", out
    assert {local for _, local in canary.hits} >= {primary, UNGUARDED.host_addr}, canary.hits
    assert [local for _, local in ns_canary.hits] == ["127.0.0.1"], ns_canary.hits
    assert any(kind == "udp" for kind, _ in received), received  # another guest's datagram reached B
    # The namespace alone still keeps the host's own loopback (and so the API) away.
    assert refused(out[f"10.0.2.2:{api_port(server)}"])


async def test_without_the_egress_namespace_the_hosts_loopback_and_api_are_reached(
        vm_host: Host, image: ImageSnapshot, server: ServerThread, canary: Canary,
        monkeypatch: pytest.MonkeyPatch) -> None:
    targets = [("10.0.2.2", api_port(server)), ("10.0.2.2", gateway_port(server)), ("10.0.2.2", canary.port),
               ("fec0::2", canary.port), *((addr, canary.port) for addr in host_addresses())]
    async with host_namespace_clone(vm_host, image, monkeypatch) as a3:
        out = await attack(a3.require_agent(), targets, http=True)
    await asyncio.sleep(0.5)
    report("no egress namespace", **{f"{h}:{p}": out[f"{h}:{p}"] for h, p in targets}, canary=canary.hits)
    assert all(r[0] == "connected" for r in out.values()), out
    assert str(out[f"10.0.2.2:{api_port(server)}"][2]).startswith("HTTP/1."), out  # the real API answered
    assert {local for _, local in canary.hits} >= {"127.0.0.1", "::1", *host_addresses()}, canary.hits


# -- disks --------------------------------------------------------------------------------------------------
def _drive_files(vm: VM) -> set[Path]:
    files = set()
    for arg in (vm.dir / "qemu.argv").read_text().split():
        for opt in arg.split(","):
            if opt.startswith("file="):
                files.add(Path(opt.removeprefix("file=")).resolve())
    return files


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


async def test_a_guest_sees_only_its_own_disks_and_cannot_write_the_shared_runtime_disk(
        vm_host: Host, image: ImageSnapshot, victim: VM) -> None:
    runtime = image.spec.drives[0].path
    before = (_head(runtime), runtime.stat().st_mtime_ns)
    async with attacker(vm_host, image) as a:
        devices = await guest_json(a.require_agent(), BLOCK_DEVICES)
        out = await guest_json(a.require_agent(), RUNTIME_WRITE)
        files = _drive_files(a)
    report("block devices", devices=devices, runtime_write=out)
    assert devices == {"vda": {"bytes": disks.virtual_size_bytes(runtime), "ro": True},
                       "vdb": {"bytes": disks.virtual_size_bytes(image.disk), "ro": False}}, devices
    assert out["write"] != "ok", out
    assert (_head(runtime), runtime.stat().st_mtime_ns) == before
    # Host side: A's VMM opens its own overlay and its image's files, nothing of B's.
    assert all(f.is_relative_to(a.dir.resolve()) or f.is_relative_to(image.dir.resolve()) for f in files), files
    assert not any(f.is_relative_to(victim.dir.resolve()) for f in files)


async def test_with_the_runtime_disk_attached_writable_the_same_write_lands(
        vm_host: Host, kit: Any, image: ImageSnapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "runtime-copy.ext4"
    shutil.copyfile(image.spec.drives[0].path, copy)
    async with writable_runtime_boot(vm_host, kit, copy, monkeypatch) as vm:
        out = await guest_json(vm.require_agent(), RUNTIME_WRITE)
    report("runtime disk writable", runtime_write=out)
    assert out["write"] == "ok", out
    assert _head(copy, 12) == b"EMBER-TAMPER"


async def test_filling_the_disk_stops_at_its_size_and_leaves_the_image_and_other_vms_alone(
        vm_host: Host, image: ImageSnapshot, victim: VM) -> None:
    frozen = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in (image.disk, image.memory)}
    virtual = disks.virtual_size_bytes(image.disk)
    async with attacker(vm_host, image) as a:
        agent = a.require_agent()
        avail = int((await agent.exec(["/bin/sh", "-c", "df -B1 --output=avail / | tail -1"])).stdout)
        t0 = time.monotonic()
        fill = await agent.exec(["dd", "if=/dev/zero", "of=/root/fill", "bs=4M", "oflag=direct"], timeout=600)
        fill_s = time.monotonic() - t0
        written = int((await agent.exec(["stat", "-c", "%s", "/root/fill"])).stdout)
        # Past the filesystem: root writes the raw device's last MiBs and on beyond its end.
        seek = virtual // (1 << 20) - RAW_TAIL_MIB
        raw = await agent.exec(["dd", "if=/dev/zero", "of=/dev/vdb", "bs=1M", f"seek={seek}", "oflag=direct"],
                               timeout=120)
        overlay = disks.allocated_bytes(a.dir / "disk.qcow2")
        assert await agent.ping() < AGENT_PING_BOUND_S
    after = await victim.require_agent().exec(
        ["/bin/sh", "-c", "dd if=/dev/zero of=/root/after bs=1M count=10 conv=fsync 2>&1 && rm /root/after"])
    report("disk fill", avail=avail, written=written, seconds=round(fill_s, 1), dd=fill.stderr.decode(),
           raw=raw.stderr.decode(), overlay_bytes=overlay, virtual_bytes=virtual)
    assert fill.exit_code == 1 and b"No space left on device" in fill.stderr, fill
    assert 0.9 * avail <= written <= avail
    assert raw.exit_code == 1 and b"No space left on device" in raw.stderr, raw
    assert f"{RAW_TAIL_MIB * (1 << 20)} bytes".encode() in raw.stderr, raw.stderr  # exactly up to the end
    assert overlay <= virtual + QCOW2_OVERHEAD_BYTES
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in frozen} == frozen
    assert after.exit_code == 0, after


# -- memory, CPU, processes -------------------------------------------------------------------------------
async def test_a_memory_hog_is_killed_inside_its_guest_and_the_vmm_stays_within_its_size(
        vm_host: Host, image: ImageSnapshot, victim: VM, server: ServerThread) -> None:
    base_rtt, base_api = await exec_rtt_s(victim.require_agent()), api_latency_s(server)
    async with attacker(vm_host, image) as a:
        assert a.pid is not None
        agent = a.require_agent()
        t0 = time.monotonic()
        hog = asyncio.create_task(agent.exec(["/usr/bin/python3", "-c", HOG], timeout=300))
        await asyncio.sleep(3)
        rtt, api = await exec_rtt_s(victim.require_agent()), api_latency_s(server)
        res = await hog
        hog_s = time.monotonic() - t0
        events = await guest_user_cgroup(agent)
        ping = await agent.ping()
        rss = qemu_rss_mib(a.pid)
        cgroup = vmm_memory_cgroup(a)
    report("memory hog", hog_signal=res.signal, hog_s=round(hog_s, 1), memory_events=events["memory.events"],
           ping_after_s=round(ping, 3), qemu_rss_mib=rss, vmm_cgroup=cgroup, victim_rtt_s=(base_rtt, rtt),
           api_s=(base_api, api))
    assert res.signal == signal.SIGKILL, res
    assert events["memory.events"]["oom_kill"] >= 1
    assert ping < AGENT_PING_BOUND_S
    assert rss <= MEMORY_MIB + jail.MEMORY_OVERHEAD_MIB
    if cgroup is not None:
        assert cgroup["peak"] <= cgroup["limit"] == (MEMORY_MIB + jail.MEMORY_OVERHEAD_MIB) << 20
    assert rtt <= max(VICTIM_RTT_FLOOR_S, SLOWDOWN_RATIO * base_rtt)
    assert api <= API_LATENCY_BOUND_S


async def _code_cache_growth_mib(host: Host, image: ImageSnapshot) -> tuple[int, int, float]:
    async with attacker(host, image) as a:
        assert a.pid is not None
        agent = a.require_agent()
        await agent.put_file("/root/churn.py", CODE_CHURN.encode())
        warm = await agent.exec(["/usr/bin/python3", "/root/churn.py", "1"])  # touch Python's and the code's pages
        assert warm.exit_code == 0, warm
        before = qemu_rss_mib(a.pid)
        res = await agent.exec(["/usr/bin/python3", "/root/churn.py", str(CODE_CHURN_ROUNDS)], timeout=600)
        assert res.exit_code == 0, res
        return before, qemu_rss_mib(a.pid), float(res.stdout)


async def test_churning_translated_code_grows_the_vmm_at_most_by_its_code_cache(
        vm_host: Host, image: ImageSnapshot) -> None:
    if vm_host.accel.accel != "tcg":
        pytest.skip("no translation cache under KVM")
    before, after, seconds = await _code_cache_growth_mib(vm_host, image)
    report("code churn, tb-size bound", rss_before_mib=before, rss_after_mib=after, seconds=seconds)
    assert after - before <= qemu_mod.TCG_TB_SIZE_MIB + TB_SLACK_MIB


async def test_without_the_code_cache_bound_the_same_churn_grows_the_vmm_beyond_it(
        vm_host: Host, image: ImageSnapshot, monkeypatch: pytest.MonkeyPatch) -> None:
    if vm_host.accel.accel != "tcg":
        pytest.skip("no translation cache under KVM")
    bound = qemu_mod.TCG_TB_SIZE_MIB + TB_SLACK_MIB
    monkeypatch.setattr(qemu_mod, "TCG_TB_SIZE_MIB", QEMU_DEFAULT_TB_SIZE_MIB)
    with vmm_jail_off():  # and no cgroup either
        before, after, seconds = await _code_cache_growth_mib(vm_host, image)
    report("code churn, QEMU's default cache, no cgroup", rss_before_mib=before, rss_after_mib=after,
           seconds=seconds)
    assert after - before > bound


async def test_spinning_every_vcpu_leaves_other_vms_and_the_host_serving(
        vm_host: Host, image: ImageSnapshot, victim: VM, server: ServerThread) -> None:
    base_rtt = await exec_rtt_s(victim.require_agent(), 7)
    base_api = min(api_latency_s(server) for _ in range(3))
    async with attacker(vm_host, image) as a:
        assert a.pid is not None
        spinners = [await a.require_agent().spawn(["/bin/sh", "-c", SPIN]) for _ in range(VCPUS)]
        await asyncio.sleep(2)
        cpu0, t0 = qemu_cpu_s(a.pid), time.monotonic()
        rtt = await exec_rtt_s(victim.require_agent(), 7)
        api = max(api_latency_s(server) for _ in range(3))
        cores = (qemu_cpu_s(a.pid) - cpu0) / (time.monotonic() - t0)
        for p in spinners:
            await p.kill()
    report("cpu hog", attacker_cores=round(cores, 2), victim_rtt_s=(round(base_rtt, 3), round(rtt, 3)),
           api_s=(round(base_api, 4), round(api, 4)))
    assert rtt <= max(VICTIM_RTT_FLOOR_S, SLOWDOWN_RATIO * base_rtt)
    assert api <= API_LATENCY_BOUND_S
    assert cores <= VCPUS + 0.25  # the VMM cgroup's quota: its vCPUs' worth


async def _ping_while(agent: Any, task: asyncio.Task[Any], timeout_s: float, stop_on_timeout: bool) -> list[float]:
    """Ping every second until ``task`` ends; each ping's seconds (inf for one that timed out)."""
    pings: list[float] = []
    while not task.done():
        try:
            pings.append(await asyncio.wait_for(agent.ping(), timeout_s))
        except TimeoutError:
            pings.append(float("inf"))
            if stop_on_timeout:
                break
        await asyncio.sleep(1)
    return pings


async def test_a_fork_bomb_is_contained_by_the_guests_user_cgroup(
        vm_host: Host, image: ImageSnapshot, victim: VM, server: ServerThread) -> None:
    base_rtt = await exec_rtt_s(victim.require_agent())
    async with attacker(vm_host, image) as a:
        agent = a.require_agent()
        await agent.put_file("/root/bomb.py", FORK_BOMB.encode())
        t0 = time.monotonic()
        bomb = asyncio.create_task(agent.exec(["/usr/bin/python3", "/root/bomb.py", str(FORK_BOMB_S)],
                                              timeout=FORK_BOMB_S + 120))
        await asyncio.sleep(3)
        rtt, api = await exec_rtt_s(victim.require_agent()), api_latency_s(server)
        pings = await _ping_while(agent, bomb, AGENT_PING_BOUND_S * 5, stop_on_timeout=False)
        res = await bomb
        bomb_s = time.monotonic() - t0
        events = await guest_user_cgroup(agent)
        controllers = (await agent.get_file("/sys/fs/cgroup/cgroup.subtree_control", root="runtime")).split()
        after = await agent.exec(["/bin/true"])
    report("fork bomb", bomb_s=round(bomb_s, 1), pids_events=events["pids.events"],
           memory_events=events["memory.events"], max_ping_s=round(max(pings), 3),
           victim_rtt_s=(round(base_rtt, 3), round(rtt, 3)), api_s=round(api, 4))
    assert res.exit_code == 0, res
    assert {b"memory", b"pids", b"cpu"} <= set(controllers), controllers  # the group is one CPU entity too
    assert events["pids.events"]["max"] > 0  # forks were refused at pids.max
    assert max(pings) < AGENT_PING_BOUND_S, pings
    assert bomb_s < FORK_BOMB_S + 30
    assert after.exit_code == 0
    assert rtt <= max(VICTIM_RTT_FLOOR_S, SLOWDOWN_RATIO * base_rtt)
    assert api <= API_LATENCY_BOUND_S


async def test_outside_the_user_cgroup_the_same_fork_bomb_starves_the_agent(
        vm_host: Host, image: ImageSnapshot, victim: VM, server: ServerThread) -> None:
    base_rtt = await exec_rtt_s(victim.require_agent())
    async with attacker(vm_host, image) as a:
        agent = a.require_agent()
        await agent.put_file("/root/bomb.py", FORK_BOMB.encode())
        # Root in the guest moves itself out of the user cgroup first (the group is no boundary).
        escape = f"echo 0 > /sys/fs/cgroup/cgroup.procs && exec /usr/bin/python3 /rootfs/root/bomb.py {FORK_BOMB_OFF_S}"
        t0 = time.monotonic()
        bomb = asyncio.create_task(agent.exec(["/bin/sh", "-c", escape], root="runtime", timeout=None))
        try:
            await asyncio.sleep(3)
            rtt, api = await exec_rtt_s(victim.require_agent()), api_latency_s(server)
            pings = await _ping_while(agent, bomb, AGENT_PING_BOUND_S * 5, stop_on_timeout=True)
            starved_after_s = time.monotonic() - t0
        finally:
            bomb.cancel()
            with contextlib.suppress(BaseException):
                await bomb
    report("fork bomb outside the user cgroup", pings=[round(p, 3) for p in pings],
           starved_after_s=round(starved_after_s, 1), victim_rtt_s=(round(base_rtt, 3), round(rtt, 3)),
           api_s=round(api, 4))
    # The twin of the contained bomb's `max(pings) < AGENT_PING_BOUND_S`: outside the group the agent falls
    # behind that bound (how far, up to not answering at all, depends on how the guest thrashes).
    assert max(pings) >= AGENT_PING_BOUND_S, pings
    assert rtt <= max(VICTIM_RTT_FLOOR_S, SLOWDOWN_RATIO * base_rtt)
    assert api <= API_LATENCY_BOUND_S
    assert await exec_rtt_s(victim.require_agent(), 1) < VICTIM_RTT_FLOOR_S
