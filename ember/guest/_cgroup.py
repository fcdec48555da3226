"""The user cgroup: every process the agent starts runs in it, so a runaway one cannot starve the agent.

A fork bomb or a memory hog in the app or in a command exhausts this group, not the VM: the kernel
refuses its forks beyond ``pids.max`` and OOM-kills inside it at ``memory.max``, while the agent
(PID 1, outside the group) keeps answering the host. Measured under TCG (512 MiB, 2 vCPUs): a 20 s
Python fork bomb left the agent unanswering for more than five minutes without the group; inside
it, pings stayed under 0.1 s and the bomb ended at its deadline (``tests/security/test_guest.py``).

This is not a security boundary: root in the guest can leave the group or raise its limits. The
guest is hostile anyway and the host confines the whole VM (``ember.vmm.jail``); the group keeps a
tenant's own VM manageable when its code runs away.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

from ember.guest._procs import log

CGROUP_MOUNT = "/sys/fs/cgroup"
USER_GROUP = "user"
# Memory the user group cannot take, for the agent (~25 MiB resident) and the kernel:
# 64 MiB, or a quarter of the VM's memory when that is less (small VMs).
RESERVE_MAX_MIB = 64
RESERVE_FRACTION = 4
# pids.max (threads count too) per MiB of guest memory: 512 MiB gives ~940; never below MIN_PIDS.
PIDS_PER_MIB = 2
MIN_PIDS = 256
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8


@dataclass(frozen=True)
class UserLimits:
    """The user group's limits for a VM of a given memory size."""

    memory_bytes: int
    pids: int


def user_limits(mem_total_bytes: int) -> UserLimits:
    reserve = min(RESERVE_MAX_MIB << 20, mem_total_bytes // RESERVE_FRACTION)
    return UserLimits(memory_bytes=mem_total_bytes - reserve,
                      pids=max(MIN_PIDS, PIDS_PER_MIB * (mem_total_bytes >> 20)))


def mem_total_bytes(meminfo: str = "/proc/meminfo") -> int:
    with open(meminfo) as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) << 10
    raise OSError(f"no MemTotal in {meminfo}")


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _mount_cgroup2(target: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"cgroup2", target.encode(), b"cgroup2", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount cgroup2 on {target}: {os.strerror(err)}")


def setup_user_cgroup(mount: str = CGROUP_MOUNT, meminfo: str = "/proc/meminfo") -> int | None:
    """Mount cgroup2 if needed and (re)create the user group; an fd of its ``cgroup.procs``.

    A child joins the group by writing ``0`` to that fd before it execs. None (and one line on the
    console) when the kernel offers no cgroup2 with the memory and pids controllers: processes then
    run without these limits, as before.
    """
    try:
        if not os.path.exists(os.path.join(mount, "cgroup.controllers")):
            _mount_cgroup2(mount)
        limits = user_limits(mem_total_bytes(meminfo))
        _write(os.path.join(mount, "cgroup.subtree_control"), "+memory +pids")
        try:
            # CPU weight makes the whole group one scheduling entity beside the agent, whatever its size.
            _write(os.path.join(mount, "cgroup.subtree_control"), "+cpu")
        except OSError as exc:
            log(f"user cgroup without the cpu controller: {exc}")
        group = os.path.join(mount, USER_GROUP)
        os.makedirs(group, exist_ok=True)
        _write(os.path.join(group, "memory.max"), str(limits.memory_bytes))
        _write(os.path.join(group, "pids.max"), str(limits.pids))
        fd = os.open(os.path.join(group, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        log(f"no user cgroup, processes run without memory and pids limits: {exc}")
        return None
    log(f"user cgroup: memory.max {limits.memory_bytes >> 20} MiB, pids.max {limits.pids}")
    return fd
