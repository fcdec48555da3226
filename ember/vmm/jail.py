"""VMM confinement: what a QEMU process may see, use and become, set up before it starts.

Every VMM is started through :meth:`Jail.enter`, which runs in the forked child just before ``exec``:

1. it joins the VM's own cgroup (memory, CPU and pids limits sized from the VM);
2. it enters a network namespace: a new empty one for a VM without egress, or the egress namespace;
3. it enters a new mount namespace in which Ember's data directories (``$EMBER_HOME``, the VM
   directories, the socket directory) are covered by empty tmpfs mounts, and only this VM's own files
   are bound back: its work directory and sockets read-write, its kernel, initrd, base disks and
   image files read-only where QEMU allows it; ``/proc`` is remounted with ``hidepid=invisible``;
4. it sets rlimits (no core dumps, bounded file size and open files);
5. it drops to a uid of its own (one per VM) and the shared VMM group, with no supplementary groups,
   then sets ``no_new_privs``.

QEMU itself adds its seccomp filter (``-sandbox on,...,spawn=deny``), which forbids creating processes:
a VMM can never start a process for a PID namespace to contain, so none is created (it would cost a
resident init process per VM); a distinct uid and ``hidepid`` already keep it from seeing, signalling or
tracing other VMMs.

Most steps need root. When Ember does not run as root the jail says so once (:func:`confinement`) and
keeps what an unprivileged process can still do: rlimits and ``no_new_privs``.

``enter`` runs between fork and exec in a process that may have had threads: it takes no locks of
its own, imports nothing and logs nothing; a failure is written to the child's stderr (``qemu.log``).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import logging
import os
import resource
import signal
import stat
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ember.errors import VmmStartError

from . import Drive, MachineSpec

log = logging.getLogger(__name__)

UID_BASE = int(os.environ.get("EMBER_VMM_UID_BASE", "6400000"))
"""VMM uids are ``UID_BASE + 1 + n`` (n < UID_SLOTS); ``UID_BASE`` itself is the shared VMM group."""
UID_SLOTS = 1 << 20
VMM_GID = UID_BASE
CGROUP_PARENT = "ember"
# QEMU's own memory beside guest RAM: device state, I/O buffers, and under TCG a translation cache
# bounded by `tb-size` (ember.vmm.qemu.TCG_TB_SIZE_MIB).
MEMORY_OVERHEAD_MIB = 320
# QEMU threads: main loop, RCU, one per vCPU, and a block I/O pool of up to 64 workers.
PIDS_MAX = 256
NOFILE = 4096
FSIZE_SLACK = 512 << 20
CPU_PERIOD_US = 100_000
VMM_THREADS_CPUS = 1

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38


@dataclass(frozen=True)
class Confinement:
    """What this host lets Ember do to confine VMMs (decided once per process)."""

    root: bool
    namespaces: bool
    cgroup: str | None
    """``"v2"``, ``"v1"`` or None (no writable cgroup hierarchy with the controllers)."""
    hidepid: bool
    disabled_by: str | None = None

    @property
    def full(self) -> bool:
        return self.root and self.namespaces and self.cgroup is not None

    def describe(self) -> str:
        if self.disabled_by:
            return f"VMM confinement off ({self.disabled_by}): QEMU runs as uid {os.geteuid()} with rlimits only"
        if not self.root:
            return (f"VMM confinement partial: not root, so QEMU runs as uid {os.geteuid()} in the host's "
                    "namespaces without cgroup limits (rlimits, no_new_privs and QEMU's seccomp filter still apply)")
        parts = ["own uid per VM", "no_new_privs", "rlimits", "seccomp"]
        parts += ["mount and network namespaces"] if self.namespaces else []
        parts += [f"cgroup {self.cgroup} memory/CPU/pids limits"] if self.cgroup else []
        parts += ["/proc hidepid"] if self.hidepid else []
        missing = [] if self.namespaces else ["namespaces (unshare refused)"]
        missing += [] if self.cgroup else ["cgroup limits (no writable cgroup hierarchy)"]
        text = "VMM confinement: " + ", ".join(parts)
        return text + ("; unavailable: " + ", ".join(missing) if missing else "")


@cache
def confinement() -> Confinement:
    """Probe the host once; logged at the first VMM start so a degraded jail is never silent."""
    if os.environ.get("EMBER_VMM_JAIL", "on") == "off":
        found = Confinement(False, False, None, False, disabled_by="EMBER_VMM_JAIL=off")
    elif os.geteuid() != 0:
        found = Confinement(False, False, None, False)
    else:
        found = Confinement(True, _probe_namespaces(), _cgroup_version(), _probe_hidepid())
    (log.info if found.full else log.warning)(found.describe(), extra={"action": "vmm_confinement"})
    return found


class _Libc:
    """libc's functions, looked up once in the parent: a lookup (dlsym) in the forked child of a threaded
    process could wait forever for a loader lock another thread held at fork time."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.unshare, self.mount, self.setns, self.prctl = libc.unshare, libc.mount, libc.setns, libc.prctl


_LIBC = _Libc()


def _probe_namespaces() -> bool:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os._exit(0 if _LIBC.unshare(_CLONE_NEWNS | _CLONE_NEWNET) == 0 else 1)
    return os.waitpid(pid, 0)[1] == 0


def _probe_hidepid() -> bool:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        libc = _LIBC
        ok = libc.unshare(_CLONE_NEWNS) == 0 and libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) == 0
        ok = ok and libc.mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                               b"hidepid=invisible") == 0
        os._exit(0 if ok else 1)
    return os.waitpid(pid, 0)[1] == 0


CGROUP_ROOT = Path("/sys/fs/cgroup")
_V1_CONTROLLERS = ("memory", "cpu", "pids")


def _cgroup_version() -> str | None:
    if (CGROUP_ROOT / "cgroup.controllers").is_file():
        wanted = {"memory", "cpu", "pids"}
        if wanted <= set((CGROUP_ROOT / "cgroup.controllers").read_text().split()):
            return "v2"
        return None
    if all((CGROUP_ROOT / c / "cgroup.procs").is_file() for c in _V1_CONTROLLERS):
        return "v1"
    return None


_UID_LOCK = threading.Lock()


def vmm_uid(workdir: Path) -> int:
    """The uid of the VMM of ``workdir``: stable across restarts, distinct between the VMs of a host.

    Recorded in ``workdir/vmm.uid``, a root-owned file in a root-owned directory (the VMM cannot change
    it); allocations in this process are serialised, so two VMs starting at once never share a uid.
    """
    recorded = workdir / "vmm.uid"
    with _UID_LOCK:
        try:
            uid = int(recorded.read_text())
        except (OSError, ValueError):
            uid = None
        if uid is not None:
            if not UID_BASE < uid <= UID_BASE + UID_SLOTS:
                raise VmmStartError(f"{recorded} holds {uid}, outside the VMM uid range; remove the file")
            return uid
        used = set()
        for other in workdir.parent.glob("*/vmm.uid"):
            try:
                used.add(int(other.read_text()))
            except (OSError, ValueError):
                continue
        slot = int.from_bytes(hashlib.sha256(str(workdir.resolve()).encode()).digest()[:8], "big") % UID_SLOTS
        while UID_BASE + 1 + slot in used:
            slot = (slot + 1) % UID_SLOTS
        uid = UID_BASE + 1 + slot
        recorded.write_text(str(uid))
        return uid


@dataclass(frozen=True)
class Visible:
    """A path bound into the VMM's mount namespace at the same place."""

    path: Path
    writable: bool


@dataclass(frozen=True)
class CgroupLimits:
    memory_bytes: int
    cpu_quota_us: int
    pids: int = PIDS_MAX


@dataclass
class Jail:
    """Everything ``enter`` does for one VMM, computed and prepared in the parent."""

    name: str
    uid: int | None
    gid: int | None
    hidden: tuple[Path, ...]
    visible: tuple[Visible, ...]
    netns: str | None
    new_netns: bool
    resolv_conf: Path | None
    rlimits: dict[int, int]
    cgroup_dirs: tuple[Path, ...]
    hidepid: bool
    die_with_parent: bool

    # -- in the child, between fork and exec ----------------------------
    def enter(self) -> None:
        try:
            self._enter()
        except BaseException as exc:
            os.write(2, f"ember jail: {exc}\n".encode())
            raise

    def _enter(self) -> None:
        libc = _LIBC

        def check(rc: int, what: str) -> None:
            if rc != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"{what}: {os.strerror(err)}")

        for cg in self.cgroup_dirs:
            with open(cg / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
        netfd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY | os.O_CLOEXEC) if self.netns else None
        if self.hidden or self.new_netns or netfd is not None:
            check(libc.unshare(_CLONE_NEWNS | (_CLONE_NEWNET if self.new_netns else 0)), "unshare")
            check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
        # Opened inside the new mount namespace: a bind source must be a mount of the caller's namespace.
        sources = [os.open(v.path, os.O_PATH | os.O_CLOEXEC) for v in self.visible]
        resolv = os.open(self.resolv_conf, os.O_PATH | os.O_CLOEXEC) if self.resolv_conf else None
        if netfd is not None:
            check(libc.setns(netfd, _CLONE_NEWNET), f"enter network namespace {self.netns}")
        if resolv is not None:
            check(libc.mount(f"/proc/self/fd/{resolv}".encode(), b"/etc/resolv.conf", None, _MS_BIND, None),
                  "bind resolv.conf")
        for root in self.hidden:
            check(libc.mount(b"tmpfs", str(root).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                             b"mode=0755,size=64k"), f"cover {root}")
        for v, fd in zip(self.visible, sources, strict=True):
            target = str(v.path)
            _make_mount_point(v.path, os.path.isdir(f"/proc/self/fd/{fd}"))
            check(libc.mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None, _MS_BIND, None),
                  f"bind {target}")
            if not v.writable:
                check(libc.mount(None, target.encode(), None,
                                 _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, None),
                      f"read-only {target}")
        if self.hidepid:
            check(libc.mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, b"hidepid=invisible"),
                  "mount /proc")
        for which, limit in self.rlimits.items():
            resource.setrlimit(which, (limit, limit))
        if self.gid is not None:
            os.setgroups([])
            os.setresgid(self.gid, self.gid, self.gid)
        if self.uid is not None:
            os.setresuid(self.uid, self.uid, self.uid)
        check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        if self.die_with_parent:
            # After the uid change: a credential change clears the parent-death signal.
            check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "parent-death signal")

    # -- in the parent ----------------------------------------------------
    def release(self) -> None:
        """Remove the VM's cgroups once its VMM has ended (best effort: a cgroup with tasks stays)."""
        _remove_cgroups(self.cgroup_dirs)


def _remove_cgroups(dirs: tuple[Path, ...]) -> None:
    for cg in dirs:
        try:
            cg.rmdir()
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EBUSY):
                log.warning("cannot remove cgroup %s: %s", cg, exc)


def _make_mount_point(path: Path, is_dir: bool) -> None:
    """Create ``path`` (and its parents) inside a covering tmpfs, as a directory or an empty file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        path.mkdir()
    else:
        path.touch()


def cgroup_dirs(name: str, version: str | None) -> tuple[Path, ...]:
    if version == "v2":
        return (CGROUP_ROOT / CGROUP_PARENT / name,)
    if version == "v1":
        return tuple(CGROUP_ROOT / c / CGROUP_PARENT / name for c in _V1_CONTROLLERS)
    return ()


# A cgroup this old with no task left belongs to a VMM that died without its owner releasing it (the owner
# died first); a younger one may be a VMM's that is being started by another process.
STALE_CGROUP_S = 300.0


def sweep_stale_cgroups(version: str | None, now: float | None = None) -> int:
    """Remove the empty VM cgroups older than ``STALE_CGROUP_S``; how many were removed."""
    parents = {"v2": [CGROUP_ROOT / CGROUP_PARENT],
               "v1": [CGROUP_ROOT / c / CGROUP_PARENT for c in _V1_CONTROLLERS]}.get(version or "", [])
    now = time.time() if now is None else now
    removed = 0
    for parent in parents:
        for group in parent.glob("mvm-*"):
            try:
                if now - group.stat().st_mtime > STALE_CGROUP_S and not (group / "cgroup.procs").read_text().strip():
                    group.rmdir()
                    removed += 1
            except OSError:
                continue  # in use again, or gone meanwhile
    return removed


def create_cgroups(name: str, version: str | None, limits: CgroupLimits) -> tuple[Path, ...]:
    """The VM's cgroups, made (or reset) with ``limits``; () when the host has none to give."""
    sweep_stale_cgroups(version)
    dirs = cgroup_dirs(name, version)
    try:
        if version == "v2":
            parent = CGROUP_ROOT / CGROUP_PARENT
            parent.mkdir(exist_ok=True)
            (CGROUP_ROOT / "cgroup.subtree_control").write_text("+memory +cpu +pids")
            (parent / "cgroup.subtree_control").write_text("+memory +cpu +pids")
            cg = dirs[0]
            cg.mkdir(exist_ok=True)
            (cg / "memory.max").write_text(str(limits.memory_bytes))
            if (cg / "memory.swap.max").exists():
                (cg / "memory.swap.max").write_text("0")
            (cg / "cpu.max").write_text(f"{limits.cpu_quota_us} {CPU_PERIOD_US}")
            (cg / "pids.max").write_text(str(limits.pids))
        elif version == "v1":
            memory, cpu, pids = dirs
            for d in dirs:
                d.mkdir(parents=True, exist_ok=True)
            (memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
            (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (cpu / "cpu.cfs_quota_us").write_text(str(limits.cpu_quota_us))
            (pids / "pids.max").write_text(str(limits.pids))
    except OSError as exc:
        raise VmmStartError(f"cannot set up cgroup {name} ({version}): {exc}") from exc
    return dirs


def cgroup_limits(memory_mib: int, vcpus: int) -> CgroupLimits:
    """Limits matching the VM's size: its RAM plus QEMU's own overhead, and its vCPUs' worth of CPU time
    plus one CPU for QEMU's own threads (main loop, I/O, migration), which a busy vCPU must not starve."""
    return CgroupLimits(memory_bytes=(memory_mib + MEMORY_OVERHEAD_MIB) << 20,
                        cpu_quota_us=(vcpus + VMM_THREADS_CPUS) * CPU_PERIOD_US)


def qcow2_backing(path: Path) -> Path | None:
    """The backing file named in a qcow2 header (None for raw disks and qcow2 without one)."""
    with open(path, "rb") as f:
        header = f.read(32)
        if len(header) < 24 or header[:4] != b"QFI\xfb":
            return None
        offset, size = int.from_bytes(header[8:16], "big"), int.from_bytes(header[16:20], "big")
        if not offset or not 0 < size <= 4096:
            return None
        f.seek(offset)
        name = Path(os.fsdecode(f.read(size)))
    return name if name.is_absolute() else path.parent / name


def disk_size(path: Path) -> int:
    """Virtual size of a disk: from the qcow2 header, else the file's size."""
    with open(path, "rb") as f:
        header = f.read(32)
    if header[:4] == b"QFI\xfb" and len(header) >= 32:
        return int.from_bytes(header[24:32], "big")
    return path.stat().st_size


def _own(path: Path, uid: int | None, gid: int | None, mode: int) -> None:
    """Give ``path`` to ``uid``/``gid`` with ``mode``, refusing a symlink (it could lead anywhere)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise VmmStartError(f"cannot prepare {path} for the VMM: {exc.strerror}") from exc
    try:
        if not (stat.S_ISREG(os.fstat(fd).st_mode) or stat.S_ISDIR(os.fstat(fd).st_mode)):
            raise VmmStartError(f"{path} is not a regular file or directory")
        os.fchown(fd, uid if uid is not None else -1, gid if gid is not None else -1)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _readable(path: Path) -> None:
    """Shared read-only VM files (kernel, runtime disk, frozen layers) must be readable by every VMM uid."""
    info = path.stat()
    if not info.st_mode & 0o004:
        if info.st_uid != 0 or not stat.S_ISREG(info.st_mode):
            raise VmmStartError(f"{path} is not readable by VMMs and not root's to fix: make it world-readable")
        os.chmod(path, (info.st_mode & 0o7777) | 0o044)


def _backing_chain(drive: Drive, path: Path) -> list[Path]:
    """The layers under ``drive``. A writable overlay's header is the VMM's to write: its first layer is
    the one the host recorded, or it is refused; frozen layers below were checked when they froze."""
    layers: list[Path] = []
    layer = qcow2_backing(path)
    if not drive.read_only and layer is not None and drive.backing is not None and _spelled(layer) != drive.backing:
        raise VmmStartError(f"the header of {path} names backing file {layer}, not the {drive.backing} Ember gave it")
    while layer is not None:
        layer = _spelled(layer)
        if layer in layers or len(layers) > 64:
            raise VmmStartError(f"the backing chain of {path} loops or is too deep")
        _readable(layer)
        layers.append(layer)
        layer = qcow2_backing(layer)
    return layers


def _cover_point(path: Path) -> Path:
    """Where to mount the tmpfs hiding ``path``: the highest ancestor other users cannot traverse, if any.

    A VMM uid must reach its files through every parent directory; ``/root`` or a 0700 temp
    directory above ``$EMBER_HOME`` would stop it, so the cover goes there (with a traversable tmpfs).
    """
    for parent in reversed(path.parents[:-1]):  # from the top, never "/" itself
        if not parent.stat().st_mode & 0o001:
            return parent
    return path


def _spelled(path: Path) -> Path:
    """``path`` made absolute as QEMU will open it: symlinks are kept, the bind goes where QEMU looks."""
    return Path(os.path.abspath(path))


def _traversable(path: Path) -> bool:
    """Whether any uid reaches ``path``, both as spelled and through the symlinks in it."""
    chains = (path, *path.parents, *(real := path.resolve(), *real.parents))
    return all(p.stat().st_mode & 0o001 for p in chains)


def _outermost(paths: list[Path]) -> tuple[Path, ...]:
    out: list[Path] = []
    for p in sorted({_cover_point(p) for p in paths if p.is_dir()}, key=lambda x: len(x.parts)):
        if p.is_dir() and not any(p.is_relative_to(o) for o in out):
            out.append(p)
    return tuple(out)


def jail_name(workdir: Path) -> str:
    """The VMM's cgroup name: the VM id and a hash of its directory (two hosts' directories may share ids)."""
    return f"{workdir.name}-{hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:8]}"


def plan(spec: MachineSpec, workdir: Path, sockdir: Path, *, data_roots: tuple[Path, ...] = (),
         die_with_parent: bool = True) -> Jail:
    """The jail of the VMM for ``spec`` in ``workdir``; prepares ownership and cgroups (root only)."""
    conf = confinement()
    name = jail_name(workdir)
    largest = max([spec.memory_mib << 20, *(disk_size(d.path) for d in spec.drives)])
    rlimits = {resource.RLIMIT_CORE: 0, resource.RLIMIT_NOFILE: NOFILE,
               resource.RLIMIT_FSIZE: largest + FSIZE_SLACK}
    if not conf.root:
        return Jail(name, None, None, (), (), None, False, None, rlimits, (), False, die_with_parent)
    uid, gid = vmm_uid(workdir), VMM_GID
    workdir = _spelled(workdir)
    # The work dir stays root's: a VMM may write its own files in it, never add, rename or replace one
    # (the host later trusts what it reads there: records, the uid file, disk headers).
    _own(workdir, 0, 0, 0o711)
    _own(sockdir, uid, gid, 0o700)
    console = workdir / "console.log"
    console.touch()
    _own(console, uid, gid, 0o600)
    visible = [Visible(workdir, True), Visible(_spelled(sockdir), True)]
    for path in (spec.kernel, spec.initrd):
        _readable(path)
        visible.append(Visible(_spelled(path), False))
    for drive in spec.drives:
        path = _spelled(drive.path)
        if drive.read_only:
            _readable(path)
        else:
            _own(path, uid, gid, 0o600)
        visible.append(Visible(path, not drive.read_only))
        visible += [Visible(layer, False) for layer in _backing_chain(drive, path)]
    if spec.ram_path is not None:
        ram = _spelled(spec.ram_path)
        if spec.ram_shared:
            _own(ram, uid, gid, 0o600)
        else:
            # QEMU 7.2 opens a privately mapped RAM file read-write (8.2's `rom=on` would not): the shared
            # VMM group may open it, and only the VMs cloned from this image ever see it (mount namespace).
            _own(ram, None, gid, 0o660)
        visible.append(Visible(ram, True))
    hidden = _outermost([*(_spelled(r) for r in data_roots), workdir.parent, _spelled(sockdir).parent,
                         # A file behind a directory others cannot traverse (a kit under /root) needs a cover
                         # there too, through which it is bound back.
                         *(_cover_point(v.path.parent) for v in visible if not _traversable(v.path.parent))])
    if not conf.namespaces:
        hidden = ()
    keep = [v for v in visible if any(v.path.is_relative_to(h) for h in hidden)]
    # A path inside another bound directory is already visible with that directory's access.
    keep = [v for v in keep if not any(o.path != v.path and v.path.is_relative_to(o.path) and o.path.is_dir()
                                       for o in keep)]
    dirs = create_cgroups(name, conf.cgroup, cgroup_limits(spec.memory_mib, spec.vcpus))
    return Jail(name=name, uid=uid, gid=gid, hidden=hidden, visible=tuple(dict.fromkeys(keep)),
                netns=spec.netns, new_netns=conf.namespaces and not spec.netns,
                resolv_conf=resolv_conf_for(spec.netns) if spec.netns else None, rlimits=rlimits,
                cgroup_dirs=dirs, hidepid=conf.hidepid and conf.namespaces, die_with_parent=die_with_parent)


def release_cgroups(name: str) -> None:
    """Remove the cgroups named ``name`` (a VMM adopted after a restart has no Jail object)."""
    _remove_cgroups(cgroup_dirs(name, confinement().cgroup))


def resolv_conf_for(netns: str) -> Path | None:
    """The resolver file ``ip netns exec`` would bind for ``netns`` (user-mode NAT's DNS reads it)."""
    path = Path("/etc/netns") / netns / "resolv.conf"
    return path if path.is_file() else None


__all__ = ["Confinement", "Jail", "cgroup_limits", "confinement", "create_cgroups", "jail_name", "plan",
           "release_cgroups", "vmm_uid"]
