"""Boot, image snapshot, clone, suspend and resume real VMs (QEMU; TCG on these machines)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ember.errors import AgentOpError, EmberError, InvalidInput, VmExited
from ember.host.host import VM, Host, ImageSnapshot
from tests.framework.vms import counter_info, qemu_pids_under, wait_until
from tests.vm.conftest import img_info

pytestmark = pytest.mark.vm

STREAMS = 10
STREAM_BYTES = 10 << 20


async def test_boot_runs_commands_and_reports_failures(booted: VM, kit) -> None:  # type: ignore[no-untyped-def]
    agent = booted.require_agent()
    res = await agent.exec(["uname", "-r"])
    assert res.exit_code == 0
    assert res.stdout.decode().strip() == kit.kernel_release

    res = await agent.exec(["sh", "-c", "echo broken >&2; exit 7"])
    assert res.exit_code == 7
    assert res.stderr == b"broken\n"

    with pytest.raises(AgentOpError) as err:
        await agent.exec(["/no/such/program"])
    assert err.value.code == "ENOENT"


async def test_clone_keeps_process_and_memory(clone: VM, image: ImageSnapshot) -> None:
    pid_before, counter_before = img_info[image.dir]
    pid, counter, _ = await counter_info(clone.require_agent())
    assert pid == pid_before
    # The counter lives only in the process's memory: it goes on from the snapshot.
    assert counter == counter_before + 1


async def test_suspend_resume_keeps_process_memory_and_files(host: Host, clone: VM) -> None:
    agent = clone.require_agent()
    pid, counter, token = await counter_info(agent)
    await agent.put_file("/root/kept.txt", b"written before suspend")
    pid_vmm = clone.pid

    size = await host.suspend(clone)
    assert clone.state == "suspended"
    assert size > 1 << 20  # a clone's RAM is private: the stream holds it
    assert pid_vmm is not None and not Path(f"/proc/{pid_vmm}").exists(), "suspended VM still has a VMM"

    await host.resume(clone)
    agent = clone.require_agent()
    assert await counter_info(agent) == (pid, counter + 1, token)
    assert await agent.get_file("/root/kept.txt") == b"written before suspend"


async def test_clones_do_not_share_files(host: Host, image: ImageSnapshot) -> None:
    a, b = await host.clone(image), await host.clone(image)
    try:
        await a.require_agent().put_file("/root/only-a", b"a")
        await b.require_agent().put_file("/root/only-b", b"b")
        res_a = await a.require_agent().exec(["ls", "/root"])
        res_b = await b.require_agent().exec(["ls", "/root"])
        assert "only-a" in res_a.stdout.decode() and "only-b" not in res_a.stdout.decode()
        assert "only-b" in res_b.stdout.decode() and "only-a" not in res_b.stdout.decode()
    finally:
        await host.destroy(a)
        await host.destroy(b)


async def test_clones_get_fresh_entropy_and_the_host_clock(host: Host, image: ImageSnapshot) -> None:
    a, b = await host.clone(image), await host.clone(image)
    try:
        read = ["sh", "-c", "head -c 32 /dev/urandom | od -An -tx1"]
        ra, rb = await a.require_agent().exec(read), await b.require_agent().exec(read)
        assert ra.stdout and rb.stdout and ra.stdout != rb.stdout

        for vm in (a, b):
            t0 = time.time()
            res = await vm.require_agent().exec(["date", "+%s.%N"])
            t1 = time.time()
            guest = float(res.stdout)
            # The image was taken minutes ago; the guest's clock must be today's, not the snapshot's.
            assert t0 - 1.0 <= guest <= t1 + 1.0, (guest, t0, t1)
    finally:
        await host.destroy(a)
        await host.destroy(b)


async def test_guest_time_runs_at_host_rate(clone: VM) -> None:
    agent = clone.require_agent()

    async def sample() -> tuple[float, float]:
        t0 = time.monotonic()
        res = await agent.exec(["cut", "-d", " ", "-f1", "/proc/uptime"])
        t1 = time.monotonic()
        return float(res.stdout), (t0 + t1) / 2

    g0, h0 = await sample()
    await asyncio.sleep(10)
    g1, h1 = await sample()
    rate = (g1 - g0) / (h1 - h0)
    assert 0.95 <= rate <= 1.05, f"guest time runs at {rate:.3f}x the host's"


async def test_ten_concurrent_streams_are_byte_exact(clone: VM) -> None:
    agent = clone.require_agent()

    async def one(i: int) -> None:
        payload = hashlib.sha256(str(i).encode()).digest() * (STREAM_BYTES // 32)
        stream = await agent.open_stream(7000)

        async def send() -> None:
            for off in range(0, len(payload), 1 << 20):
                await stream.write(payload[off: off + (1 << 20)])
            await stream.write_eof()

        sender = asyncio.create_task(send())
        got = hashlib.sha256()
        n = 0
        while chunk := await stream.read():
            got.update(chunk)
            n += len(chunk)
        await sender
        await stream.close()
        assert n == len(payload)
        assert got.digest() == hashlib.sha256(payload).digest()

    await asyncio.gather(*(one(i) for i in range(STREAMS)))


async def test_killed_vmm_is_detected_and_cleaned_up(host: Host, image: ImageSnapshot) -> None:
    vm = await host.clone(image)
    pid = vm.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert await wait_until(lambda: vm.state == "exited", timeout=10)
    assert vm.exit_reason == "VMM killed by signal SIGKILL"
    with pytest.raises(VmExited, match="SIGKILL"):
        vm.require_agent()
    await host.destroy(vm)
    assert not vm.dir.exists()
    assert qemu_pids_under(vm.dir) == []


async def test_destroy_leaves_no_process(host: Host, image: ImageSnapshot) -> None:
    vm = await host.clone(image)
    pid = vm.pid
    await host.destroy(vm)
    await host.destroy(vm)  # idempotent
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    assert not vm.dir.exists()


def test_vms_die_with_a_crashed_test_process(tmp_path: Path, rootfs: Path) -> None:
    """A test process killed mid-test (no teardown runs) leaves no VMM behind."""
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from pathlib import Path
        from ember.host.host import Host
        from ember.host.kit import load_kit
        async def main():
            host = Host(home=Path({str(tmp_path)!r}), kit=load_kit())
            vm = await host.boot(Path({str(rootfs)!r}))
            print(vm.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    vmm_pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{vmm_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{vmm_pid}").exists(), "QEMU outlived the process that started it"
    assert qemu_pids_under(tmp_path) == []


async def test_resource_limits_are_refused_before_anything_starts(host: Host, rootfs: Path) -> None:
    before = set(os.listdir(host.vms_dir))
    with pytest.raises(InvalidInput, match=r"memory_mib: 40000 is outside 128..32768 MiB"):
        await host.boot(rootfs, memory_mib=40000)
    with pytest.raises(InvalidInput, match=r"vcpus: 17 is outside 1..16"):
        await host.boot(rootfs, vcpus=17)
    assert set(os.listdir(host.vms_dir)) == before


async def test_missing_suspend_snapshot_is_a_clear_error(host: Host, clone: VM) -> None:
    await host.suspend(clone)
    (clone.dir / "suspend.state").unlink()
    with pytest.raises(EmberError, match=r"suspend snapshot .* is missing"):
        await host.resume(clone)
    assert clone.state == "suspended"
