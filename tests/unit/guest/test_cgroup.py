"""The agent's user cgroup: limits sized from the VM's memory, set up on a cgroup2 tree, joined by every child."""

from __future__ import annotations

import os
from pathlib import Path

from ember.guest import _cgroup
from ember.guest._procs import ProcSpec, Reaper, spawn

MIB = 1 << 20


def test_limits_keep_a_reserve_for_the_agent_and_scale_pids_with_memory() -> None:
    big = _cgroup.user_limits(469 * MIB)  # a 512 MiB VM's MemTotal
    assert big.memory_bytes == (469 - 64) * MIB
    assert big.pids == 2 * 469
    small = _cgroup.user_limits(100 * MIB)  # a 128 MiB VM: a quarter is kept back, pids at the floor
    assert small.memory_bytes == 75 * MIB
    assert small.pids == _cgroup.MIN_PIDS


def _fake_cgroup2(root: Path) -> Path:
    """A directory shaped like a mounted cgroup2 root with its ``user`` group (regular files stand in)."""
    for name in ("cgroup.controllers", "cgroup.subtree_control"):
        (root / name).write_text("")
    user = root / _cgroup.USER_GROUP
    user.mkdir()
    for name in ("memory.max", "pids.max", "cgroup.procs"):
        (user / name).write_text("")
    return user


def test_setup_writes_the_limits_and_returns_the_join_fd(tmp_path: Path) -> None:
    user = _fake_cgroup2(tmp_path)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:         480176 kB\nMemFree:  1 kB\n")
    fd = _cgroup.setup_user_cgroup(str(tmp_path), str(meminfo))
    assert fd is not None
    try:
        limits = _cgroup.user_limits(480176 << 10)
        assert (user / "memory.max").read_text() == str(limits.memory_bytes)
        assert (user / "pids.max").read_text() == str(limits.pids)
        assert os.get_inheritable(fd) is False
    finally:
        os.close(fd)


def test_setup_failure_leaves_processes_unlimited(tmp_path: Path) -> None:
    _fake_cgroup2(tmp_path)
    assert _cgroup.setup_user_cgroup(str(tmp_path), str(tmp_path / "no-meminfo")) is None


async def test_every_child_joins_the_group_before_exec(tmp_path: Path) -> None:
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    join = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
    reaper = Reaper()
    reaper.start()
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        spec = ProcSpec(argv=["/bin/true"], env={"PATH": "/usr/bin:/bin"}, cwd="/", uid=os.geteuid(),
                        gid=os.getegid(), chroot=None, cgroup_procs=join)
        _, exit_fut = await spawn(reaper, spec, (null, null, null))
        assert os.WEXITSTATUS(await exit_fut) == 0
    finally:
        reaper.stop()
        os.close(null)
        os.close(join)
    assert procs.read_bytes() == b"0"
