"""The QEMU driver: a ``microvm`` machine per VM, controlled over QMP.

Snapshots are QEMU migration streams written through ``exec:cat`` (QEMU 7.2 has
no ``file:`` URI). The ``x-ignore-shared`` capability is always on: RAM mapped
from a shared file is then left out of the stream (the file *is* that RAM), which
turns an image snapshot into a few kilobytes of device state, while RAM mapped
privately (clones) is written in full. The capability travels in the stream, so
every load must turn it on too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable
from pathlib import Path

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

from ember.errors import SnapshotError, VmExited, VmmError, VmmStartError

from . import MachineSpec, SavedState, jail

log = logging.getLogger(__name__)

QEMU_BINARY = "qemu-system-x86_64"
# QEMU creates its QMP socket within milliseconds; this allows for a loaded host.
QMP_CONNECT_TIMEOUT_S = 15.0
# A migration of a few hundred MiB of touched RAM takes seconds under TCG; this only catches hangs.
MIGRATION_TIMEOUT_S = 300.0
QUIT_TIMEOUT_S = 5.0
# Migration's default bandwidth cap (32 MiB/s) would make suspend needlessly slow.
MIGRATION_MAX_BANDWIDTH = 1 << 40
# TCG's translation cache (default 1 GiB on 64-bit hosts) counts against the VM's memory cgroup.
TCG_TB_SIZE_MIB = 128


def socket_dir() -> Path:
    """A short private directory for QMP and agent sockets.

    Unix socket paths are limited to 107 bytes, and ``$EMBER_HOME`` can be deep;
    mode 0700 keeps other local users away from every VM's control sockets.
    """
    base = Path("/run/ember") if os.geteuid() == 0 and Path("/run").is_dir() else Path(
        os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/ember-{os.geteuid()}")
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    return base


def vm_socket_dir(workdir: Path) -> Path:
    """The VM's own socket directory: the one place under ``socket_dir()`` its (unprivileged) VMM may write."""
    tag = hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:20]
    return socket_dir() / tag


def socket_paths(workdir: Path) -> tuple[Path, Path]:
    """(QMP socket, agent socket) of the VM whose work dir is ``workdir``."""
    base = vm_socket_dir(workdir)
    return base / "qmp", base / "agent"


# The exit status of a VMM this process did not start (adopted after a restart) cannot be read.
UNKNOWN_EXIT_STATUS = 255


async def _wait_foreign(pid: int) -> int:
    """Wait for a process that is not our child, through a pidfd (no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return UNKNOWN_EXIT_STATUS
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return UNKNOWN_EXIT_STATUS


def file_tail(path: Path, limit: int = 2000) -> str:
    """The last ``limit`` characters of a log file, stripped; "" when it cannot be read."""
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""


def qemu_argv(spec: MachineSpec, workdir: Path, incoming: bool) -> list[str]:
    """The command line for ``spec``. Devices are listed in a fixed order: snapshots depend on it."""
    mem = f"{spec.memory_mib}M"
    qmp_sock, agent_sock = socket_paths(workdir)
    argv = [
        QEMU_BINARY,
        "-M", "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,memory-backend=mem0",
        "-accel", f"tcg,tb-size={TCG_TB_SIZE_MIB}" if spec.accel == "tcg" else spec.accel,
        "-cpu", "host" if spec.accel == "kvm" else "max",
        "-smp", str(spec.vcpus),
        "-m", mem,
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        # seccomp: no obsolete syscalls, no privilege gain, no new processes, no scheduler or affinity changes.
        "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        "-object", (f"memory-backend-file,id=mem0,size={mem},mem-path={spec.ram_path},"
                    f"share={'on' if spec.ram_shared else 'off'}") if spec.ram_path is not None
        # Anonymous RAM loads a full stream fastest: no file holes to read before each page is written.
        else f"memory-backend-ram,id=mem0,size={mem}",
        "-kernel", str(spec.kernel), "-initrd", str(spec.initrd), "-append", spec.cmdline,
        "-chardev", f"file,id=con,path={workdir / 'console.log'},append=on",
        "-serial", "chardev:con",
    ]
    for i, drive in enumerate(spec.drives):
        ro = ",readonly=on" if drive.read_only else ""
        argv += ["-drive", f"id=d{i},file={drive.path},format={drive.format},if=none,cache=writeback{ro}",
                 "-device", f"virtio-blk-device,drive=d{i}"]
    argv += [
        "-device", "virtio-serial-device",
        "-chardev", f"socket,id=agent,path={agent_sock},server=on,wait=off",
        "-device", "virtserialport,chardev=agent,name=ember.agent",
    ]
    netdev = "user,id=n0" if spec.network == "user" else "hubport,id=n0,hubid=0"
    argv += ["-netdev", netdev, "-device", "virtio-net-device,netdev=n0,mac=52:54:00:12:34:56"]
    if spec.rng:
        argv += ["-object", "rng-random,id=rng0,filename=/dev/urandom",
                 "-device", "virtio-rng-device,rng=rng0"]
    argv += ["-qmp", f"unix:{qmp_sock},server=on,wait=off"]
    if incoming:
        argv += ["-incoming", "defer"]
    return argv


class QemuMachine:
    """One QEMU process and its QMP connection."""

    def __init__(self, pid: int, workdir: Path, spec: MachineSpec,
                 proc: asyncio.subprocess.Process | None = None, jail_name: str | None = None) -> None:
        self._jail_name = jail_name
        self._pid = pid
        self._proc = proc
        self.workdir = workdir
        self.spec = spec
        self._qmp = QMPClient(f"ember-{pid}")
        self._exit_status: int | None = None
        wait = proc.wait() if proc is not None else _wait_foreign(pid)
        self._waiter = asyncio.get_running_loop().create_task(self._record_exit(wait), name=f"qemu-wait-{pid}")

    async def _record_exit(self, wait: Awaitable[int]) -> int:
        self._exit_status = await wait
        if self._jail_name is not None:
            jail.release_cgroups(self._jail_name)
        # Nothing listens on the sockets any more; a later start makes the directory afresh.
        shutil.rmtree(vm_socket_dir(self.workdir), ignore_errors=True)
        return self._exit_status

    # -- facts -----------------------------------------------------------
    @property
    def pid(self) -> int:
        return self._pid

    @property
    def agent_socket(self) -> Path:
        return socket_paths(self.workdir)[1]

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    @property
    def returncode(self) -> int | None:
        return self._exit_status

    def stderr_tail(self, limit: int = 2000) -> str:
        return file_tail(self.workdir / "qemu.log", limit)

    # -- QMP -------------------------------------------------------------
    async def _connect_qmp(self) -> None:
        sock = socket_paths(self.workdir)[0]
        deadline = time.monotonic() + QMP_CONNECT_TIMEOUT_S
        while True:
            if self._waiter.done():
                raise VmmStartError(f"QEMU exited with status {self.returncode} while starting: "
                                    f"{self.stderr_tail()}", pid=self.pid)
            if sock.exists():
                try:
                    await self._qmp.connect(str(sock))
                    break
                except (QMPError, OSError):
                    pass
            if time.monotonic() > deadline:
                raise VmmStartError(f"no QMP socket after {QMP_CONNECT_TIMEOUT_S} s", pid=self.pid)
            await asyncio.sleep(0.01)
        await self._execute("migrate-set-capabilities",
                            capabilities=[{"capability": "x-ignore-shared", "state": True}])

    async def _execute(self, cmd: str, **args: object) -> object:
        if self._waiter.done():
            raise VmExited(f"QEMU exited with status {self.returncode}", pid=self.pid)
        try:
            return await self._qmp.execute(cmd, args or None)
        except QMPError as exc:
            if self._waiter.done():
                raise VmExited(f"QEMU exited with status {self.returncode} during {cmd}", pid=self.pid) from exc
            raise VmmError(f"QMP {cmd} failed: {exc}", pid=self.pid) from exc

    async def _pass_fd(self, path: Path, flags: int, name: str) -> None:
        """Open ``path`` here and hand the fd to QEMU as ``name`` (for ``fd:<name>`` migration URIs)."""
        fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
        try:
            self._qmp.send_fd_scm(fd)
            await self._execute("getfd", fdname=name)
        finally:
            os.close(fd)

    async def _status(self) -> str:
        res = await self._execute("query-status")
        assert isinstance(res, dict)
        return str(res["status"])

    # -- operations ------------------------------------------------------
    async def status(self) -> str:
        """QEMU's run state: running, paused, postmigrate, finish-migrate, inmigrate…"""
        return await self._status()

    async def resume_after_interrupted_save(self) -> None:
        """An adopted VMM may be paused in the middle of (or after) a save nobody will finish: run it again."""
        with contextlib.suppress(VmmError):
            await self._execute("migrate_cancel")
        if await self._status() != "running":
            await self._execute("cont")

    async def pause(self) -> None:
        await self._execute("stop")

    async def cont(self) -> None:
        await self._execute("cont")

    async def _wait_migration(self, what: str) -> dict[str, object]:
        deadline = time.monotonic() + MIGRATION_TIMEOUT_S
        while time.monotonic() < deadline:
            res = await self._execute("query-migrate")
            assert isinstance(res, dict)
            status = res.get("status")
            if status == "completed":
                return res
            if status in ("failed", "cancelled"):
                raise SnapshotError(f"{what} {status}: {res.get('error-desc', 'no reason given')}", pid=self.pid)
            await asyncio.sleep(0.005)
        raise SnapshotError(f"{what} took longer than {MIGRATION_TIMEOUT_S} s", pid=self.pid)

    async def save(self, dest: Path) -> SavedState:
        t0 = time.monotonic()
        await self._execute("stop")
        await self._execute("migrate-set-parameters", **{"max-bandwidth": MIGRATION_MAX_BANDWIDTH})
        tmp = dest.with_name(dest.name + ".partial")
        # Hand QEMU an open file rather than `exec:cat > f`: when QEMU reports 'completed' it has
        # written its last byte into our fd, with no helper process still flushing a pipe.
        await self._pass_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "snapshot")
        await self._execute("migrate", uri="fd:snapshot")
        try:
            await self._wait_migration("snapshot")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        return SavedState(dest, dest.stat().st_size, time.monotonic() - t0, ram_in_file=self.spec.ram_shared)

    async def incoming(self, state: Path) -> None:
        """Load ``state`` into a VMM started with ``-incoming defer``; leaves the guest paused."""
        # An fd rather than `exec:cat`: QEMU then never needs to spawn a process (-sandbox spawn=deny).
        await self._pass_fd(state, os.O_RDONLY, "incoming")
        await self._execute("migrate-incoming", uri="fd:incoming")
        deadline = time.monotonic() + MIGRATION_TIMEOUT_S
        while True:
            res = await self._execute("query-migrate")
            assert isinstance(res, dict)
            if res.get("status") == "failed":
                raise SnapshotError(f"restore failed: {res.get('error-desc', 'no reason given')}: "
                                    f"{self.stderr_tail()}", pid=self.pid)
            if res.get("status") == "completed" and await self._status() in ("paused", "postmigrate"):
                return
            if time.monotonic() > deadline:
                raise SnapshotError(f"restore took longer than {MIGRATION_TIMEOUT_S} s", pid=self.pid)
            await asyncio.sleep(0.005)

    async def quit(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(VmmError, QMPError, OSError):
                await asyncio.wait_for(self._qmp.execute("quit"), QUIT_TIMEOUT_S)
            try:
                await asyncio.wait_for(asyncio.shield(self._waiter), QUIT_TIMEOUT_S)
            except TimeoutError:
                await self.kill()
        await self._close_qmp()

    async def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        await asyncio.shield(self._waiter)
        await self._close_qmp()

    async def _close_qmp(self) -> None:
        with contextlib.suppress(Exception):
            await self._qmp.disconnect()
        if self.returncode is not None:
            for sock in socket_paths(self.workdir):
                sock.unlink(missing_ok=True)

    async def wait(self) -> int:
        return await asyncio.shield(self._waiter)


class QemuDriver:
    """Boots and restores QEMU microvm machines (KVM or TCG, as the spec says)."""

    name = "qemu"

    def __init__(self, *, die_with_parent: bool = True, data_roots: tuple[Path, ...] = ()) -> None:
        # True: every VMM gets SIGKILL when this process dies (tests, the library).
        # False (ember serve): VMMs outlive a crash of the control process and are adopted at restart.
        self.die_with_parent = die_with_parent
        # Directories whose contents a VMM must not see, but for its own files (ember.vmm.jail).
        self.data_roots = data_roots

    async def adopt(self, pid: int, spec: MachineSpec, workdir: Path) -> QemuMachine:
        """Take over a VMM an earlier process started (after a restart): reconnect to its QMP socket."""
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if Path(f"/proc/{pid}").exists() else b""
        if QEMU_BINARY.encode() not in cmdline or str(socket_paths(workdir)[0]).encode() not in cmdline:
            raise VmExited(f"no VMM of {workdir.name} runs as pid {pid}", pid=pid)
        machine = QemuMachine(pid, workdir, spec, jail_name=jail.jail_name(workdir))
        try:
            await machine._connect_qmp()
        except BaseException:
            await machine._close_qmp()
            raise
        return machine

    async def _start(self, spec: MachineSpec, workdir: Path, incoming: bool) -> QemuMachine:
        workdir.mkdir(parents=True, exist_ok=True)
        sockdir = vm_socket_dir(workdir)
        sockdir.mkdir(mode=0o700, exist_ok=True)
        for leftover in socket_paths(workdir):
            leftover.unlink(missing_ok=True)
        argv = qemu_argv(spec, workdir, incoming)
        (workdir / "qemu.argv").write_text("\n".join(argv) + "\n")
        cell = await asyncio.to_thread(jail.plan, spec, workdir, sockdir, data_roots=self.data_roots,
                                       die_with_parent=self.die_with_parent)
        with open(workdir / "qemu.log", "ab") as errlog:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=errlog, stderr=errlog,
                    preexec_fn=cell.enter, start_new_session=True)
            except FileNotFoundError as exc:
                cell.release()
                raise VmmStartError(f"{QEMU_BINARY} not found: run `ember setup`") from exc
            except subprocess.SubprocessError as exc:
                cell.release()
                raise VmmStartError(f"cannot confine the VMM: {file_tail(workdir / 'qemu.log')}") from exc
            except BaseException:
                cell.release()
                raise
        (workdir / "qemu.pid").write_text(str(proc.pid))
        machine = QemuMachine(proc.pid, workdir, spec, proc, jail_name=cell.name)
        try:
            await machine._connect_qmp()
        except BaseException:
            await machine.kill()
            raise
        log.info("qemu started", extra={"action": "vmm_start", "pid": proc.pid, "workdir": str(workdir)})
        return machine

    async def boot(self, spec: MachineSpec, workdir: Path) -> QemuMachine:
        return await self._start(spec, workdir, incoming=False)

    async def restore(self, spec: MachineSpec, workdir: Path, state: Path) -> QemuMachine:
        if not state.is_file():
            raise SnapshotError(f"state file {state} is missing")
        machine = await self._start(spec, workdir, incoming=True)
        try:
            await machine.incoming(state)
            await machine.cont()
        except BaseException:
            await machine.kill()
            raise
        return machine
