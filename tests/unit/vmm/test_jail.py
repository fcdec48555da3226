"""The VMM jail: its plan (paths, uids, limits) and, as root, what a jailed process can and cannot reach."""

from __future__ import annotations

import dataclasses
import os
import resource
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ember.errors import VmmStartError
from ember.vmm import Drive, MachineSpec, jail
from ember.vmm.jail import Confinement, Jail, Visible

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="confinement needs root")


def qcow2(path: Path, backing: Path | None = None, size: str = "64M") -> Path:
    args = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        args += ["-F", "raw" if backing.suffix == ".raw" else "qcow2", "-b", str(backing)]
    subprocess.run([*args, str(path), *([] if backing else [size])], check=True)
    return path


def test_backing_chain_and_virtual_size_come_from_the_qcow2_header(tmp_path: Path) -> None:
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * 4096)
    mid = qcow2(tmp_path / "mid.qcow2", base)
    top = qcow2(tmp_path / "top.qcow2", mid)
    assert jail.qcow2_backing(top) == mid
    assert jail.qcow2_backing(mid) == base
    assert jail.qcow2_backing(base) is None
    assert jail.disk_size(qcow2(tmp_path / "big.qcow2", size="3G")) == 3 << 30
    assert jail.disk_size(base) == 4096


def test_cgroup_limits_match_the_vm_size() -> None:
    limits = jail.cgroup_limits(memory_mib=512, vcpus=2)
    assert limits.memory_bytes == (512 + jail.MEMORY_OVERHEAD_MIB) << 20
    assert limits.cpu_quota_us == (2 + jail.VMM_THREADS_CPUS) * jail.CPU_PERIOD_US
    assert limits.pids == jail.PIDS_MAX


def test_vmm_uids_are_stable_per_directory_and_distinct_between_vms(tmp_path: Path) -> None:
    dirs = [tmp_path / f"vm{i}" for i in range(50)]
    for d in dirs:
        d.mkdir()
    uids = [jail.vmm_uid(d) for d in dirs]
    assert len(set(uids)) == len(uids)
    assert all(jail.UID_BASE < u <= jail.UID_BASE + jail.UID_SLOTS for u in uids)
    assert [jail.vmm_uid(d) for d in dirs] == uids


def test_a_taken_uid_is_never_given_twice(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    # Claim, for another VM, the uid the hash would give the second one.
    (first / "vmm.uid").write_text(str(jail.vmm_uid(second)))
    (second / "vmm.uid").unlink()
    assert jail.vmm_uid(second) != int((first / "vmm.uid").read_text())


def test_cover_point_climbs_to_the_first_directory_others_cannot_traverse() -> None:
    top = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        closed = top / "closed"
        data = closed / "open" / "data"
        data.mkdir(parents=True)
        os.chmod(closed, 0o700)
        assert jail._cover_point(data) == closed
        os.chmod(closed, 0o755)
        assert jail._cover_point(data) == data
    finally:
        shutil.rmtree(top)


def test_describe_says_what_is_missing() -> None:
    assert "not root" in Confinement(False, False, None, False).describe()
    assert "EMBER_VMM_JAIL=off" in Confinement(False, False, None, False, disabled_by="EMBER_VMM_JAIL=off").describe()
    text = Confinement(True, True, None, True).describe()
    assert "cgroup limits" in text and "unavailable" in text
    assert "unavailable" not in Confinement(True, True, "v1", True).describe()


def spec_for(tmp_path: Path) -> tuple[MachineSpec, Path, Path]:
    home = tmp_path / "home"
    kit = home / "kit"
    kit.mkdir(parents=True)
    for name in ("vmlinuz", "initrd.img"):
        (kit / name).write_bytes(b"k")
    runtime = kit / "runtime.raw"
    runtime.write_bytes(b"\0" * 4096)
    base = qcow2(home / "base.qcow2", runtime)
    workdir = home / "vms" / "mvm-1"
    workdir.mkdir(parents=True)
    overlay = qcow2(workdir / "disk.qcow2", base)
    image_mem = home / "images" / "img" / "mem"
    image_mem.parent.mkdir(parents=True)
    image_mem.write_bytes(b"\0" * 4096)
    other = home / "vms" / "mvm-2"
    other.mkdir()
    (other / "disk.qcow2").write_bytes(b"secret of another VM")
    spec = MachineSpec(kernel=kit / "vmlinuz", initrd=kit / "initrd.img", memory_mib=256, vcpus=1, accel="tcg",
                       drives=(Drive(runtime, "raw", read_only=True), Drive(overlay, backing=base.resolve())),
                       ram_path=image_mem,
                       ram_shared=False, cmdline="")
    sockdir = tmp_path / "run" / "abc"
    sockdir.mkdir(parents=True)
    return spec, workdir, sockdir


@root_only
def test_plan_binds_only_the_vms_own_files(tmp_path: Path) -> None:
    spec, workdir, sockdir = spec_for(tmp_path)
    cell = jail.plan(spec, workdir, sockdir, data_roots=(tmp_path / "home",))
    try:
        bound = {v.path: v.writable for v in cell.visible}
        home = (tmp_path / "home").resolve()
        assert bound[workdir.resolve()] is True
        assert bound[(home / "kit" / "vmlinuz")] is False
        assert bound[(home / "kit" / "runtime.raw")] is False
        assert bound[(home / "base.qcow2")] is False  # the overlay's backing file
        assert bound[(home / "images" / "img" / "mem")] is True  # QEMU 7.2 opens it read-write
        assert not any(p.is_relative_to(home / "vms" / "mvm-2") for p in bound)
        assert cell.uid == jail.vmm_uid(workdir) and cell.gid == jail.VMM_GID
        # The work dir stays root's (the VMM cannot add or swap files); its own files are the VMM's.
        assert workdir.stat().st_uid == 0 and stat.S_IMODE(workdir.stat().st_mode) == 0o711
        assert (workdir / "disk.qcow2").stat().st_uid == cell.uid
        assert (workdir / "console.log").stat().st_uid == cell.uid
        assert (home / "images" / "img" / "mem").stat().st_gid == jail.VMM_GID
        assert cell.rlimits[resource.RLIMIT_CORE] == 0
        assert cell.rlimits[resource.RLIMIT_FSIZE] == (256 << 20) + jail.FSIZE_SLACK
    finally:
        cell.release()


def run_jailed(cell: Jail, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, preexec_fn=cell.enter, capture_output=True, text=True, timeout=30)


@root_only
def test_a_jailed_process_reads_its_own_files_but_not_another_vms_disk(tmp_path: Path) -> None:
    if not jail.confinement().namespaces:
        pytest.skip("no mount namespaces on this host")
    spec, workdir, sockdir = spec_for(tmp_path)
    other_disk = (tmp_path / "home" / "vms" / "mvm-2" / "disk.qcow2").resolve()
    cell = jail.plan(spec, workdir, sockdir, data_roots=(tmp_path / "home",))
    try:
        own = run_jailed(cell, "sh", "-c", f"id -u; head -c 4 {workdir / 'disk.qcow2'} | od -c | head -1")
        assert own.returncode == 0, own.stderr
        assert own.stdout.splitlines()[0] == str(cell.uid)
        assert "Q   F   I" in own.stdout
        attack = run_jailed(cell, "cat", str(other_disk))
        assert attack.returncode != 0 and "No such file or directory" in attack.stderr
        listing = run_jailed(cell, "ls", str(other_disk.parent.parent))
        assert listing.stdout.split() == ["mvm-1"]
        write_ro = run_jailed(cell, "sh", "-c", f"echo x >> {(tmp_path / 'home' / 'kit' / 'vmlinuz').resolve()}")
        assert write_ro.returncode != 0
        net = run_jailed(cell, "cat", "/proc/net/dev")
        assert [line.split(":")[0].strip() for line in net.stdout.splitlines()[2:]] == ["lo"]
        procs = run_jailed(cell, "ls", "/proc")
        assert [p for p in procs.stdout.split() if p.isdigit()] == [p for p in procs.stdout.split() if p.isdigit()][:1]
    finally:
        cell.release()


@root_only
def test_without_the_jail_the_same_process_reads_another_vms_disk(tmp_path: Path) -> None:
    """The protection-off twin of the test above: what the jail's mount namespace and uid stop."""
    spec, workdir, sockdir = spec_for(tmp_path)
    other_disk = tmp_path / "home" / "vms" / "mvm-2" / "disk.qcow2"
    cell = jail.plan(spec, workdir, sockdir, data_roots=(tmp_path / "home",))
    try:
        unconfined = dataclasses.replace(cell, hidden=(), visible=(), uid=None, gid=None)
        assert run_jailed(unconfined, "cat", str(other_disk)).stdout == "secret of another VM"
    finally:
        cell.release()


@root_only
def test_the_jailed_process_joins_the_vms_cgroups(tmp_path: Path) -> None:
    conf = jail.confinement()
    if conf.cgroup is None:
        pytest.skip("no writable cgroup hierarchy")
    spec, workdir, sockdir = spec_for(tmp_path)
    cell = jail.plan(spec, workdir, sockdir, data_roots=(tmp_path / "home",))
    try:
        out = run_jailed(cell, "cat", "/proc/self/cgroup").stdout
        assert cell.name in out
        if conf.cgroup == "v1":
            memory = next(d for d in cell.cgroup_dirs if "/memory/" in str(d))
            assert int((memory / "memory.limit_in_bytes").read_text()) == (256 + jail.MEMORY_OVERHEAD_MIB) << 20
    finally:
        cell.release()
    assert not any(d.exists() for d in cell.cgroup_dirs)


def test_visible_is_hashable_for_deduplication() -> None:
    assert len({Visible(Path("/a"), True), Visible(Path("/a"), True)}) == 1


@root_only
def test_files_behind_a_symlink_into_a_closed_directory_are_bound_where_qemu_looks(tmp_path: Path) -> None:
    """A kit symlinked from $EMBER_HOME into a 0700 directory (as tests and shared kits do)."""
    if not jail.confinement().namespaces:
        pytest.skip("no mount namespaces on this host")
    spec, workdir, sockdir = spec_for(tmp_path)
    closed = Path(tempfile.mkdtemp(dir="/tmp"))  # 0700, outside every covered root
    try:
        kit = tmp_path / "home" / "kit"
        shutil.move(kit, closed / "kit")
        kit.symlink_to(closed / "kit")
        cell = jail.plan(spec, workdir, sockdir, data_roots=(tmp_path / "home",))
        try:
            seen = run_jailed(cell, "cat", str(kit / "vmlinuz"))
            assert seen.returncode == 0 and seen.stdout == "k", seen.stderr
        finally:
            cell.release()
    finally:
        shutil.rmtree(closed)


@root_only
def test_a_disk_header_naming_another_backing_file_is_refused(tmp_path: Path) -> None:
    """The overlay's header is the VMM's to write: an escaped VMM must not choose what its next start binds."""
    spec, workdir, sockdir = spec_for(tmp_path)
    secret = tmp_path / "home" / "vms" / "mvm-2" / "disk.qcow2"
    subprocess.run(["qemu-img", "rebase", "-u", "-F", "raw", "-b", str(secret), str(workdir / "disk.qcow2")],
                   check=True)
    with pytest.raises(VmmStartError, match="names backing file"):
        jail.plan(spec, workdir, sockdir, data_roots=(tmp_path / "home",))


@root_only
def test_a_symlink_where_the_vmm_owns_a_file_is_refused(tmp_path: Path) -> None:
    spec, workdir, sockdir = spec_for(tmp_path)
    victim = tmp_path / "host-file"
    victim.write_text("root's")
    (workdir / "console.log").symlink_to(victim)
    with pytest.raises(VmmStartError):
        jail.plan(spec, workdir, sockdir, data_roots=(tmp_path / "home",))
    assert victim.stat().st_uid == 0


def test_a_uid_file_outside_the_vmm_range_is_refused(tmp_path: Path) -> None:
    (tmp_path / "vmm.uid").write_text("0")
    with pytest.raises(VmmStartError, match="outside the VMM uid range"):
        jail.vmm_uid(tmp_path)


@root_only
def test_stale_empty_cgroups_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    """A VMM killed with its owner (parent-death signal) leaves an empty cgroup nobody releases."""
    version = jail.confinement().cgroup
    if version is None:
        pytest.skip("no writable cgroup hierarchy")
    stale = jail.create_cgroups("mvm-stale-test", version, jail.cgroup_limits(128, 1))
    fresh = jail.create_cgroups("mvm-fresh-test", version, jail.cgroup_limits(128, 1))
    busy = subprocess.Popen(["sleep", "30"])
    try:
        for group in jail.cgroup_dirs("mvm-busy-test", version):
            group.mkdir(parents=True, exist_ok=True)
            (group / "cgroup.procs").write_text(str(busy.pid))
        later = time.time() + jail.STALE_CGROUP_S + 1
        for group in stale:
            os.utime(group, (later - 2 * jail.STALE_CGROUP_S, later - 2 * jail.STALE_CGROUP_S))
        jail.sweep_stale_cgroups(version, now=later - jail.STALE_CGROUP_S + 10)
        assert not any(g.exists() for g in stale)
        assert all(g.exists() for g in fresh)
        jail.sweep_stale_cgroups(version, now=later + 10)
        assert all(g.exists() for g in jail.cgroup_dirs("mvm-busy-test", version))  # a task still in it
    finally:
        busy.kill()
        busy.wait()
        for name in ("mvm-fresh-test", "mvm-busy-test"):
            jail.release_cgroups(name)
