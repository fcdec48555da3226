"""The VMM seam: a narrow async interface over one hypervisor process per VM.

A driver turns a :class:`MachineSpec` into a running :class:`Machine` by booting
it or by restoring saved state. Everything crossing this seam is plain data
(paths, numbers); the layers above never see QEMU.

Resources: a Machine owns its VMM process and the sockets in its work dir.
``kill()`` (or the process ending) releases the process; the caller owns the
work dir, the disks and the RAM file and removes them. Errors escaping a driver
are :class:`ember.errors.VmmError` subclasses; QMP and OS errors are translated
at the driver boundary.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

Accel = Literal["kvm", "tcg"]

__all__ = ["Accel", "Drive", "Driver", "Machine", "MachineSpec", "SavedState"]


@dataclass(frozen=True)
class Drive:
    """A virtio-blk disk. Order matters: it is part of the device model a snapshot records."""

    path: Path
    format: Literal["raw", "qcow2"] = "qcow2"
    read_only: bool = False
    # The backing file the host gave a writable qcow2 overlay when it made it. The header's own copy is
    # writable by the VMM, so the jail binds what this says, and refuses a header that says otherwise.
    backing: Path | None = None


@dataclass(frozen=True)
class MachineSpec:
    """Everything that defines a VM's virtual hardware.

    A saved state restores only into the same spec: QEMU needs the same machine,
    memory size, CPU count, kernel, initrd and devices in the same order. Paths
    of disks and of the RAM file, and whether the RAM mapping is shared, may
    differ (``with_storage``).
    """

    kernel: Path
    initrd: Path
    memory_mib: int
    vcpus: int
    accel: Accel
    drives: tuple[Drive, ...]
    # None: anonymous RAM (a resumed VM: the suspend stream carries every page).
    ram_path: Path | None
    # share=True: guest RAM writes land in ram_path (a VM whose RAM becomes an image).
    # share=False: a private copy-on-write mapping of ram_path (clones).
    ram_shared: bool
    cmdline: str
    tsc_khz: int | None = None
    rng: bool = True
    # Every VM has one virtio-net device, so that any snapshot can be restored with or
    # without egress. "none": its backend is an unconnected hub port (packets go nowhere).
    # "user": QEMU user-mode NAT, run inside network namespace ``netns`` whose own rules
    # keep it away from the host and private networks (ember.host.egress).
    network: Literal["none", "user"] = "none"
    netns: str | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data["drives"] = [{**d, "path": str(d["path"]), "backing": str(d["backing"]) if d["backing"] else None}
                          for d in data["drives"]]
        for k in ("kernel", "initrd", "ram_path"):
            data[k] = str(data[k]) if data[k] is not None else None
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> MachineSpec:
        data = json.loads(text)
        drives = tuple(Drive(Path(d["path"]), d["format"], d["read_only"],
                             Path(d["backing"]) if d.get("backing") else None) for d in data.pop("drives"))
        return cls(**{**data, "drives": drives, "kernel": Path(data["kernel"]),
                      "initrd": Path(data["initrd"]), "ram_path": Path(data["ram_path"]) if data["ram_path"] else None})

    def with_storage(self, drives: tuple[Drive, ...], ram_path: Path | None, ram_shared: bool) -> MachineSpec:
        return replace(self, drives=drives, ram_path=ram_path, ram_shared=ram_shared)


@dataclass(frozen=True)
class SavedState:
    """A device-state (and maybe RAM) stream written by ``Machine.save``."""

    path: Path
    size_bytes: int
    seconds: float
    # True when shared-file RAM was left out of the stream (it lives in the RAM file).
    ram_in_file: bool = field(default=False)


class Machine(Protocol):
    """One running (or paused) VMM process."""

    @property
    def pid(self) -> int: ...

    @property
    def agent_socket(self) -> Path: ...

    @property
    def console_log(self) -> Path: ...

    @property
    def returncode(self) -> int | None:
        """The VMM's exit status once it has ended, else None."""

    async def pause(self) -> None: ...

    async def cont(self) -> None: ...

    async def save(self, dest: Path) -> SavedState:
        """Pause and write the VM's state to ``dest`` (atomically); the VM stays paused.

        RAM in a shared file mapping is skipped (the file holds it); private RAM is
        written in full.
        """

    async def quit(self) -> None:
        """Ask the VMM to exit and wait for it; falls back to kill()."""

    async def kill(self) -> None:
        """SIGKILL the VMM and wait for it; idempotent."""

    async def wait(self) -> int:
        """Wait until the VMM process ends; its exit status."""


class Driver(Protocol):
    """Creates Machines."""

    name: str

    async def boot(self, spec: MachineSpec, workdir: Path) -> Machine:
        """Start a fresh VM from its kernel; returns once the VMM runs (the guest is still booting)."""

    async def restore(self, spec: MachineSpec, workdir: Path, state: Path) -> Machine:
        """Start a VM from saved state; returns with the guest running again."""
