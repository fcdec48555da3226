"""One machine's VMs: boot, image snapshots, clones, suspend, resume and teardown.

A VM lives in ``$EMBER_HOME/vms/<id>/``: ``disk.qcow2`` (its overlay), ``ram``
(when it owns its RAM file), ``console.log``, ``qemu.log``, QMP and agent
sockets, ``vm.json`` (its spec) and ``suspend.state`` while suspended. An image
snapshot is a directory holding the frozen disk, the RAM file, the device
state and hard links to the kernel, initrd and runtime disk it was made with,
so a later ``ember setup`` can never change what a clone restores into.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ember.contract.arns import new_microvm_id
from ember.errors import AgentError, HostError, NotFound, StateConflict, VmExited
from ember.settings import ember_home
from ember.vmm import Drive, MachineSpec, jail
from ember.vmm.accel import choose_accel, host_tsc_khz, tcg_cmdline
from ember.vmm.qemu import QemuDriver, QemuMachine, file_tail

from . import disks
from .agent_client import AgentClient
from .egress import machine_network
from .limits import DEFAULT_MEMORY_MIB, check_resources, default_vcpus

log = logging.getLogger(__name__)

BASE_CMDLINE = "console=ttyS0 quiet panic=-1 reboot=t pci=off"


@dataclass(frozen=True)
class ImageSnapshot:
    """A paused, initialised VM frozen on disk: clone it as often as you like."""

    dir: Path
    spec: MachineSpec
    state_bytes: int
    memory_bytes: int
    disk_bytes: int
    save_seconds: float

    @property
    def state(self) -> Path:
        return self.dir / "state"

    @property
    def disk(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def memory(self) -> Path:
        return self.dir / "mem"

    @classmethod
    def load(cls, path: Path) -> ImageSnapshot:
        try:
            data = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise NotFound(f"no image snapshot at {path}: {exc}") from None
        spec = MachineSpec.from_json(json.dumps(data.pop("spec")))
        return cls(dir=path, spec=spec, **data)

    def _write_manifest(self) -> None:
        data: dict[str, Any] = {"spec": json.loads(self.spec.to_json()), "state_bytes": self.state_bytes,
                                "memory_bytes": self.memory_bytes, "disk_bytes": self.disk_bytes,
                                "save_seconds": self.save_seconds}
        tmp = self.dir / "manifest.json.partial"
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.dir / "manifest.json")


class VM:
    """A VM this host runs (or holds suspended)."""

    def __init__(self, vm_id: str, vmdir: Path, spec: MachineSpec) -> None:
        self.id = vm_id
        self.dir = vmdir
        self.spec = spec
        self.machine: QemuMachine | None = None
        self.agent: AgentClient | None = None
        self.state = "starting"
        self.exit_status: int | None = None
        self._watch: asyncio.Task[None] | None = None
        self.last_suspend_bytes = 0

    @property
    def pid(self) -> int | None:
        return self.machine.pid if self.machine else None

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def alive(self) -> bool:
        return self.machine is not None and self.machine.returncode is None

    @property
    def exit_reason(self) -> str | None:
        """Why the VMM ended, in words; None while it runs."""
        if self.exit_status is None:
            return None
        if self.exit_status < 0:
            return f"VMM killed by signal {signal.Signals(-self.exit_status).name}"
        return f"VMM exited with status {self.exit_status}"

    def require_agent(self) -> AgentClient:
        if self.agent is None or not self.alive:
            raise VmExited(f"VM is {self.state}" + (f": {self.exit_reason}" if self.exit_reason else ""),
                           vm_id=self.id)
        return self.agent

    def _save_record(self) -> None:
        (self.dir / "vm.json").write_text(json.dumps({"id": self.id, "state": self.state,
                                                      "spec": json.loads(self.spec.to_json())}, indent=2))


class Host:
    """Runs VMs on this machine with one VMM driver."""

    def __init__(self, home: Path | None = None, kit: Any = None, *,
                 on_exit: Callable[[VM], None] | None = None, persistent_vmms: bool = False) -> None:
        self.home = home or ember_home()
        self.vms_dir = self.home / "vms"
        self.vms_dir.mkdir(parents=True, exist_ok=True)
        self._kit = kit
        # persistent_vmms: VMMs survive a crash of this process and are adopted by the next one (ember serve).
        self.driver = QemuDriver(die_with_parent=not persistent_vmms, data_roots=(self.home, ember_home()))
        self.accel = choose_accel()
        self.tsc_khz = host_tsc_khz() if self.accel.accel == "tcg" else None
        self.vms: dict[str, VM] = {}
        self._on_exit = on_exit

    @property
    def kit(self) -> Any:
        if self._kit is None:
            from .kit import load_kit

            # The kit lives in $EMBER_HOME even when this Host keeps its VMs elsewhere (tests).
            self._kit = load_kit()
        return self._kit

    def _cmdline(self) -> str:
        return f"{BASE_CMDLINE} {tcg_cmdline(self.tsc_khz)}" if self.tsc_khz else BASE_CMDLINE

    def _new_dir(self, vm_id: str | None) -> tuple[str, Path]:
        vm_id = vm_id or new_microvm_id()
        vmdir = self.vms_dir / vm_id
        if vmdir.exists():
            raise StateConflict(f"VM directory {vmdir} already exists")
        vmdir.mkdir(parents=True)
        return vm_id, vmdir

    async def _attach(self, vm: VM, machine: QemuMachine, after_restore: bool) -> VM:
        vm.machine = machine
        vm.exit_status = None
        vm._watch = asyncio.get_running_loop().create_task(self._watch_exit(vm, machine), name=f"watch-{vm.id}")
        try:
            vm.agent = await AgentClient.connect(machine.agent_socket, alive=lambda: machine.returncode is None)
            if after_restore:
                # Clones must not share random state or a stale clock: fix both before anything else runs.
                await vm.agent.set_clock()
                await vm.agent.add_entropy()
        except BaseException as exc:
            await self._stop_machine(vm)
            if isinstance(exc, AgentError) and machine.returncode is not None:
                raise VmExited(f"VM exited while starting: {vm.exit_reason}; console: "
                               f"{_tail(vm.console_log)}", vm_id=vm.id, pid=machine.pid) from exc
            raise
        vm.state = "running"
        self.vms[vm.id] = vm
        vm._save_record()
        return vm

    async def _watch_exit(self, vm: VM, machine: QemuMachine) -> None:
        status = await machine.wait()
        if vm.machine is machine:
            vm.exit_status = status
            if vm.state in ("running", "paused", "starting"):
                vm.state = "exited"
                log.warning("vm exited", extra={"action": "vm_exit", "vm_id": vm.id, "status": status})
                if self._on_exit is not None:
                    self._on_exit(vm)

    async def _stop_machine(self, vm: VM, graceful: bool = False) -> None:
        if vm.state in ("running", "paused", "starting"):
            vm.state = "stopping"  # an exit we cause is not a crash
        if vm.agent is not None:
            await vm.agent.close()
            vm.agent = None
        if vm.machine is not None:
            if graceful:
                await vm.machine.quit()
            else:
                await vm.machine.kill()
            if vm._watch is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await vm._watch
            vm.exit_status = vm.machine.returncode

    # -- boot ------------------------------------------------------------
    async def boot(self, rootfs: Path, *, memory_mib: int = DEFAULT_MEMORY_MIB, vcpus: int | None = None,
                   vm_id: str | None = None, egress: bool = False) -> VM:
        """Cold-boot a VM on a copy-on-write overlay of ``rootfs``; returns when its agent answers."""
        vcpus = vcpus if vcpus is not None else default_vcpus(memory_mib)
        check_resources(memory_mib, vcpus)
        kit = self.kit
        vm_id, vmdir = self._new_dir(vm_id)
        try:
            # qemu-img is a subprocess: run it off the event loop, which serves every other VM meanwhile.
            await asyncio.to_thread(disks.create_overlay, rootfs, vmdir / "disk.qcow2")
            disks.sparse_file(vmdir / "ram", memory_mib << 20)
            spec = MachineSpec(
                kernel=kit.kernel, initrd=kit.initrd, memory_mib=memory_mib, vcpus=vcpus,
                accel=self.accel.accel, cmdline=self._cmdline(), tsc_khz=self.tsc_khz,
                drives=(Drive(kit.runtime_disk, "raw", read_only=True),
                        Drive(vmdir / "disk.qcow2", backing=rootfs.resolve())),
                ram_path=vmdir / "ram", ram_shared=True, **await machine_network(egress))
            vm = VM(vm_id, vmdir, spec)
            machine = await self.driver.boot(spec, vmdir)
            return await self._attach(vm, machine, after_restore=False)
        except BaseException:
            shutil.rmtree(vmdir, ignore_errors=True)
            raise

    # -- image snapshots and clones --------------------------------------
    async def snapshot_image(self, vm: VM, dest: Path) -> ImageSnapshot:
        """Freeze a booted VM into an image snapshot at ``dest``; the VM is consumed.

        Only a VM that owns its RAM file (a cold-booted one) can become an image:
        the RAM file becomes the image's memory, shared copy-on-write by clones.
        """
        agent = vm.require_agent()
        if not vm.spec.ram_shared:
            raise StateConflict(f"VM {vm.id} maps its RAM privately; only a booted VM can become an image")
        if dest.exists():
            raise StateConflict(f"image snapshot directory {dest} already exists")
        await agent.ping()  # the agent is idle and answering when the state is taken
        tmpdir = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmpdir, ignore_errors=True)
        tmpdir.mkdir(parents=True)
        assert vm.machine is not None
        try:
            saved = await vm.machine.save(tmpdir / "state")
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        await self._stop_machine(vm, graceful=True)
        vm.state = "snapshotted"
        _check_backing(vm, vm.dir / "disk.qcow2")
        os.replace(vm.dir / "ram", tmpdir / "mem")
        os.replace(vm.dir / "disk.qcow2", tmpdir / "disk.qcow2")
        # Clones map the memory and read the disk; neither may change while one lives, nor stay owned
        # by the uid the booting VMM had (ember.vmm.jail gives every VM one).
        _freeze(tmpdir / "mem", 0o444)
        _freeze(tmpdir / "disk.qcow2", 0o444)
        runtime, disk = vm.spec.drives
        spec = vm.spec.with_storage(
            drives=(replace(runtime, path=dest / "runtime.ext4"), replace(disk, path=dest / "disk.qcow2")),
            ram_path=dest / "mem", ram_shared=False)
        spec = replace(spec, kernel=dest / "vmlinuz", initrd=dest / "initrd.img")
        disks.link_or_copy(vm.spec.kernel, tmpdir / "vmlinuz")
        disks.link_or_copy(vm.spec.initrd, tmpdir / "initrd.img")
        disks.link_or_copy(runtime.path, tmpdir / "runtime.ext4")
        image = ImageSnapshot(dir=tmpdir, spec=spec, state_bytes=saved.size_bytes,
                              memory_bytes=disks.allocated_bytes(tmpdir / "mem"),
                              disk_bytes=disks.allocated_bytes(tmpdir / "disk.qcow2"),
                              save_seconds=saved.seconds)
        image._write_manifest()
        os.replace(tmpdir, dest)
        self.vms.pop(vm.id, None)
        shutil.rmtree(vm.dir, ignore_errors=True)
        return replace(image, dir=dest)

    async def clone(self, image: ImageSnapshot, *, vm_id: str | None = None, egress: bool = False) -> VM:
        """A new VM restored from ``image``: own disk overlay, private copy-on-write RAM."""
        vm_id, vmdir = self._new_dir(vm_id)
        try:
            await asyncio.to_thread(disks.create_overlay, image.disk, vmdir / "disk.qcow2")
            runtime = image.spec.drives[0]
            spec = image.spec.with_storage(drives=(runtime, Drive(vmdir / "disk.qcow2", backing=image.disk.resolve())),
                                           ram_path=image.memory, ram_shared=False)
            spec = replace(spec, **await machine_network(egress))
            vm = VM(vm_id, vmdir, spec)
            machine = await self.driver.restore(spec, vmdir, image.state)
            return await self._attach(vm, machine, after_restore=True)
        except BaseException:
            shutil.rmtree(vmdir, ignore_errors=True)
            raise

    # -- suspend and resume ----------------------------------------------
    async def suspend(self, vm: VM) -> int:
        """Save the VM's whole state to its directory and stop its VMM; the bytes written.

        On failure the VM keeps running and nothing is lost.
        """
        vm.require_agent()
        assert vm.machine is not None
        try:
            saved = await vm.machine.save(vm.dir / "suspend.state")
        except BaseException:
            if vm.machine.returncode is None:
                with contextlib.suppress(Exception):
                    await vm.machine.cont()
            raise
        await self._stop_machine(vm, graceful=True)
        vm.state = "suspended"
        vm.last_suspend_bytes = saved.size_bytes
        vm._save_record()
        return saved.size_bytes

    async def resume(self, vm: VM) -> VM:
        """Restore a suspended VM: same processes, memory and files; clock and entropy refreshed."""
        if vm.state != "suspended":
            raise StateConflict(f"VM {vm.id} is {vm.state}, not suspended")
        state = vm.dir / "suspend.state"
        if not state.is_file():
            raise NotFound(f"suspend snapshot of VM {vm.id} is missing ({state})")
        spec = vm.spec
        if not spec.ram_shared:
            # The stream holds every page: anonymous RAM frees the VM from its image's memory file.
            spec = spec.with_storage(spec.drives, None, ram_shared=False)
        if spec.netns:
            # After a host reboot the egress namespace is gone; a suspended egress VM needs it back.
            spec = replace(spec, **await machine_network(True))
        vm.spec = spec
        machine = await self.driver.restore(spec, vm.dir, state)
        await self._attach(vm, machine, after_restore=True)
        state.unlink()
        return vm

    async def adopt(self, vm_id: str) -> VM:
        """Take over VM ``vm_id`` whose VMM an earlier process started and left running.

        A VMM found paused by an interrupted save runs again. NotFound when no such VMM lives.
        """
        vmdir = self.vms_dir / vm_id
        try:
            record = json.loads((vmdir / "vm.json").read_text())
            pid = int((vmdir / "qemu.pid").read_text())
        except (OSError, ValueError) as exc:
            raise NotFound(f"VM {vm_id} has no running VMM record: {exc}") from None
        if record.get("state") != "running":
            raise NotFound(f"VM {vm_id} was {record.get('state')}, not running")
        vm = VM(vm_id, vmdir, MachineSpec.from_json(json.dumps(record["spec"])))
        try:
            machine = await self.driver.adopt(pid, vm.spec, vmdir)
        except VmExited as exc:
            raise NotFound(str(exc)) from None
        await machine.resume_after_interrupted_save()
        # Whatever a save left behind is older than the running VM now: never resume from it.
        for stale in ("suspend.state.partial", "suspend.state"):
            (vmdir / stale).unlink(missing_ok=True)
        return await self._attach(vm, machine, after_restore=False)

    def load_suspended(self, vm_id: str) -> VM:
        """The suspended VM ``vm_id`` as recorded in its directory (after a restart of Ember).

        NotFound when its directory, record or complete suspend snapshot is missing.
        """
        if vm_id in self.vms:
            return self.vms[vm_id]
        vmdir = self.vms_dir / vm_id
        try:
            record = json.loads((vmdir / "vm.json").read_text())
        except (OSError, ValueError) as exc:
            raise NotFound(f"VM {vm_id} has no record on this host: {exc}") from None
        if record.get("state") != "suspended" or not (vmdir / "suspend.state").is_file():
            raise NotFound(f"VM {vm_id} has no complete suspend snapshot on this host")
        vm = VM(vm_id, vmdir, MachineSpec.from_json(json.dumps(record["spec"])))
        vm.state = "suspended"
        self.vms[vm_id] = vm
        return vm

    def forget(self, vm_id: str) -> None:
        """Remove a VM's directory that no live VM uses (reconcile after a restart)."""
        vm = self.vms.pop(vm_id, None)
        if vm is not None and vm.alive:
            raise StateConflict(f"VM {vm_id} is running; destroy it instead")
        shutil.rmtree(self.vms_dir / vm_id, ignore_errors=True)

    async def freeze_disk(self, vm: VM, dest: Path) -> Path:
        """Stop ``vm`` cleanly and move its disk overlay to ``dest``, a frozen layer for later VMs."""
        vm.require_agent()
        await self._stop_machine(vm, graceful=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _check_backing(vm, vm.dir / "disk.qcow2")
        os.replace(vm.dir / "disk.qcow2", dest)
        _freeze(dest, 0o444)
        vm.state = "frozen"
        self.vms.pop(vm.id, None)
        shutil.rmtree(vm.dir, ignore_errors=True)
        return dest

    # -- teardown --------------------------------------------------------
    async def destroy(self, vm: VM) -> None:
        """Kill the VM's VMM and remove its files; idempotent."""
        await self._stop_machine(vm)
        vm.state = "destroyed"
        self.vms.pop(vm.id, None)
        shutil.rmtree(vm.dir, ignore_errors=True)

    async def close(self, *, keep_suspended: bool = False) -> None:
        """Destroy every VM this Host knows; with ``keep_suspended`` suspended VMs keep their files."""
        for vm in list(self.vms.values()):
            if keep_suspended and vm.state == "suspended":
                self.vms.pop(vm.id, None)
                continue
            await self.destroy(vm)

    def reap_orphans(self) -> list[int]:
        """Kill VMM processes left by an earlier Ember process (from their pid files); their pids."""
        killed = []
        for pidfile in self.vms_dir.glob("*/qemu.pid"):
            try:
                pid = int(pidfile.read_text())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if str(pidfile.parent).encode() in cmdline and pid not in {v.pid for v in self.vms.values()}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return killed


def _freeze(path: Path, mode: int) -> None:
    """Make a VM's file a frozen layer: owned by root (not by the uid its VMM had), read-only."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.geteuid() == 0:
            os.fchown(fd, 0, 0)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _check_backing(vm: VM, disk: Path) -> None:
    """A disk's header was writable by its VMM: before it becomes a layer others read, it must still name
    the backing file the host gave it (else a clone would read whatever file the header chose)."""
    drive = vm.spec.drives[-1]
    if drive.backing is not None and jail.qcow2_backing(disk) != drive.backing:
        raise HostError(f"the disk of VM {vm.id} names a backing file Ember did not give it; refusing to freeze it")


def _tail(path: Path, limit: int = 1500) -> str:
    return file_tail(path, limit) or "(no console output)"


__all__ = ["VM", "Host", "HostError", "ImageSnapshot"]
