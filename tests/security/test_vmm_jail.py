"""An escaped VMM: what a compromised QEMU process could reach on the host, with and without its jail.

Each attack runs a command exactly where VM A's QEMU lives (its mount and network namespaces, its uid and
group, no supplementary groups) through ``nsenter`` and ``setpriv``: what code running inside QEMU after a
device-emulation bug could do. Each is paired with the same command outside the jail, to show the jail is
what stops it. Needs root (the jail needs it too).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ember.host.host import VM, Host, ImageSnapshot
from ember.vmm import jail
from tests.security.guest_fixtures import image, kit, vm_host  # noqa: F401  (module-scoped fixtures)

pytestmark = [pytest.mark.vm, pytest.mark.skipif(os.geteuid() != 0, reason="the VMM jail needs root")]


@pytest.fixture(scope="module")
async def pair(vm_host: Host, image: ImageSnapshot) -> AsyncIterator[tuple[VM, VM]]:  # noqa: F811
    a = await vm_host.clone(image)
    b = await vm_host.clone(image)
    yield a, b
    await vm_host.destroy(a)
    await vm_host.destroy(b)


def as_vmm(vm: VM, *argv: str, namespaces: bool = True, drop: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as VM ``vm``'s QEMU would: in its namespaces (``namespaces``) and as its uid (``drop``)."""
    assert vm.pid is not None
    cmd: list[str] = []
    if namespaces:
        cmd += ["nsenter", "-t", str(vm.pid), "-m", "-n", "--"]
    if drop:
        cmd += ["setpriv", f"--reuid={jail.vmm_uid(vm.dir)}", f"--regid={jail.VMM_GID}", "--clear-groups", "--"]
    return subprocess.run([*cmd, *argv], capture_output=True, text=True, timeout=30)


def status(pid: int) -> dict[str, str]:
    return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)


@pytest.fixture
def canary() -> Iterator[int]:
    """A listener on the host's loopback: the control plane, as far as an escaped VMM is concerned."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


async def test_the_vmm_runs_as_its_own_unprivileged_uid_with_limits(pair: tuple[VM, VM]) -> None:
    a, b = pair
    assert a.pid is not None and b.pid is not None
    sa, sb = status(a.pid), status(b.pid)
    uid_a = jail.vmm_uid(a.dir)
    assert sa["Uid"].split() == [str(uid_a)] * 4
    assert sa["Gid"].split() == [str(jail.VMM_GID)] * 4
    assert sa["Groups"].strip() == ""
    assert sa["NoNewPrivs"].strip() == "1" and sa["Seccomp"].strip() == "2"
    assert int(sa["CapEff"], 16) == 0 and int(sa["CapPrm"], 16) == 0
    assert sb["Uid"].split()[0] != sa["Uid"].split()[0]
    limits = Path(f"/proc/{a.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]
    conf = jail.confinement()
    if conf.cgroup == "v1":
        memory = Path("/sys/fs/cgroup/memory/ember") / jail.jail_name(a.dir)
        want = (a.spec.memory_mib + jail.MEMORY_OVERHEAD_MIB) << 20
        assert int((memory / "memory.limit_in_bytes").read_text()) == want
        assert str(a.pid) in (memory / "cgroup.procs").read_text().split()
    elif conf.cgroup == "v2":
        group = Path("/sys/fs/cgroup/ember") / jail.jail_name(a.dir)
        assert int((group / "memory.max").read_text()) == (a.spec.memory_mib + jail.MEMORY_OVERHEAD_MIB) << 20
    else:
        pytest.fail(f"no cgroup limits on this host: {conf.describe()}")


async def test_an_escaped_vmm_cannot_read_another_vms_disk(pair: tuple[VM, VM]) -> None:
    a, b = pair
    other = b.dir / "disk.qcow2"
    jailed = as_vmm(a, "head", "-c", "3", str(other))
    assert jailed.returncode != 0 and "No such file or directory" in jailed.stderr
    assert as_vmm(a, "ls", str(a.dir.parent)).stdout.split() == [a.dir.name]
    own = as_vmm(a, "head", "-c", "3", str(a.dir / "disk.qcow2"))
    assert own.returncode == 0 and own.stdout.startswith("QFI")
    # The second layer alone: A's uid in the host's mount namespace meets B's 0700 directory.
    uid_only = as_vmm(a, "head", "-c", "3", str(other), namespaces=False)
    assert uid_only.returncode != 0 and "Permission denied" in uid_only.stderr


async def test_without_the_jail_an_escaped_vmm_reads_another_vms_disk(pair: tuple[VM, VM]) -> None:
    """Protection off: a VMM as root in the host's namespaces (how QEMU ran before the jail)."""
    a, b = pair
    unjailed = as_vmm(a, "head", "-c", "3", str(b.dir / "disk.qcow2"), namespaces=False, drop=False)
    assert unjailed.returncode == 0 and unjailed.stdout.startswith("QFI")


async def test_an_escaped_vmm_cannot_reach_another_vms_agent_socket(pair: tuple[VM, VM]) -> None:
    a, b = pair
    assert b.agent is not None
    sock = str(b.machine.agent_socket) if b.machine else ""
    probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1]); print('connected')\nexcept OSError as e:\n print(e.strerror)\n")
    assert as_vmm(a, "/usr/bin/python3", "-c", probe, sock).stdout.strip() == "No such file or directory"
    assert as_vmm(a, "/usr/bin/python3", "-c", probe, sock, namespaces=False).stdout.strip() == "Permission denied"
    assert as_vmm(a, "/usr/bin/python3", "-c", probe, sock, namespaces=False, drop=False).stdout.strip() == "connected"


async def test_an_escaped_vmm_cannot_signal_or_see_other_vmms(pair: tuple[VM, VM]) -> None:
    a, b = pair
    assert b.pid is not None
    kill = as_vmm(a, "kill", "-0", str(b.pid))
    assert kill.returncode != 0 and "Operation not permitted" in kill.stderr
    assert as_vmm(a, "test", "-e", f"/proc/{b.pid}").returncode != 0  # hidepid: invisible
    assert as_vmm(a, "kill", "-0", str(b.pid), namespaces=False, drop=False).returncode == 0


async def test_an_escaped_vmm_cannot_reach_the_host_network(pair: tuple[VM, VM], canary: int) -> None:
    a, _ = pair
    probe = ("import socket,sys\ns=socket.socket()\ns.settimeout(3)\n"
             "try:\n s.connect(('127.0.0.1', int(sys.argv[1]))); print('connected')\nexcept OSError as e:\n"
             " print(e.strerror or type(e).__name__)\n")
    jailed = as_vmm(a, "/usr/bin/python3", "-c", probe, str(canary)).stdout.strip()
    assert jailed in ("Network is unreachable", "Connection refused"), jailed
    interfaces = [line.split(":")[0].strip() for line in as_vmm(a, "cat", "/proc/net/dev").stdout.splitlines()[2:]]
    assert interfaces == ["lo"]
    assert as_vmm(a, "/usr/bin/python3", "-c", probe, str(canary), namespaces=False).stdout.strip() == "connected"
