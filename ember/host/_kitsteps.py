"""The steps of the guest kit build (see ``ember.host.kit``), their content keys and the manifest."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from . import _kitbuild as kb
from . import _kitimage as ki

FORMAT = 1  # bump when the layout or the way outputs are built changes; invalidates every key
RUNTIME_LABEL = "ember-runtime"
ROOTFS_LABEL = "ember-root"
TESTROOT_MIB = 1024
GUEST_PREFIX = "/opt/ember"
RUNTIME_DIRS = ("rootfs", "proc", "sys", "dev", "tmp", "run")


class Progress(Protocol):
    """How the kit build reports its steps; the CLI renders these, the kit module prints nothing."""

    def start(self, step: str) -> None: ...

    def note(self, step: str, message: str) -> None: ...

    def done(self, step: str, detail: str, seconds: float, cached: bool) -> None: ...


class NoProgress:
    def start(self, step: str) -> None:
        pass

    def note(self, step: str, message: str) -> None:
        pass

    def done(self, step: str, detail: str, seconds: float, cached: bool) -> None:
        pass


# --------------------------------------------------------------------------- inputs and keys


def guest_source_dir() -> Path:
    """The ``ember/guest`` package directory whose files go onto the runtime disk."""
    import ember.guest

    return Path(ember.guest.__file__).resolve().parent


def guest_payload(guest_dir: Path | None = None) -> dict[str, bytes]:
    """Files the runtime disk carries under /opt/ember: ember/__init__.py and every ember/guest .py file."""
    guest_dir = guest_dir or guest_source_dir()
    files = {f"{GUEST_PREFIX}/ember/__init__.py": (guest_dir.parent / "__init__.py").read_bytes()}
    for path in sorted(guest_dir.rglob("*.py")):
        rel = path.relative_to(guest_dir)
        if "__pycache__" in rel.parts:
            continue
        files[f"{GUEST_PREFIX}/ember/guest/{rel.as_posix()}"] = path.read_bytes()
    return files


def init_script(guest_dir: Path | None = None) -> bytes:
    return ((guest_dir or guest_source_dir()) / "init.sh").read_bytes()


def kernel_key(kernel_deb: str) -> str:
    return kb.sha256_of("kernel", str(FORMAT), kernel_deb, *kb.MODULES)


def initrd_key(init: bytes, busybox_deb: str, kernel: str) -> str:
    return kb.sha256_of("initrd", str(FORMAT), init, busybox_deb, kernel, *kb.MODULES)


def tree_key() -> str:
    return kb.sha256_of("tree", str(FORMAT), kb.SUITE, *kb.RUNTIME_MMDEBSTRAP_ARGS)


def runtime_key(tree: str, payload: dict[str, bytes]) -> str:
    parts: list[bytes | str] = ["runtime", str(FORMAT), ki.MKE2FS_STYLE, tree, RUNTIME_LABEL, *RUNTIME_DIRS]
    for name in sorted(payload):
        parts += [name, payload[name]]
    return kb.sha256_of(*parts)


def kit_key(kernel: str, initrd: str, runtime: str) -> str:
    return kb.short(kb.sha256_of("kit", kernel, initrd, runtime))


# --------------------------------------------------------------------------- manifest


class Manifest:
    """``kit/manifest.json``: the current output of each step; rewritten atomically on every change."""

    def __init__(self, kitdir: Path) -> None:
        self.path = kitdir / "manifest.json"
        self.data: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            loaded = json.loads(self.path.read_text())
            if isinstance(loaded, dict) and loaded.get("format") == FORMAT:
                self.data = loaded
        self.data["format"] = FORMAT

    def get(self, step: str) -> dict[str, Any] | None:
        entry = self.data.get(step)
        return entry if isinstance(entry, dict) else None

    def set(self, step: str, entry: dict[str, Any]) -> None:
        self.data[step] = entry
        kb.write_atomic(self.path, (json.dumps(self.data, indent=2, sort_keys=True) + "\n").encode())


# --------------------------------------------------------------------------- building


class Builder:
    """Runs the kit build steps; each returns (detail, cached, result) for ``timed``."""

    def __init__(self, home: Path, progress: Progress | None, install_packages: bool = True) -> None:
        self.kitdir = home / "kit"
        self.cache = self.kitdir / "cache"
        self.debs = self.cache / "debs"
        self.progress: Progress = progress or NoProgress()
        self.install_packages = install_packages
        self.manifest = Manifest(self.kitdir)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.cache.mkdir(parents=True, exist_ok=True)
        with open(self.kitdir / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.progress.note("setup", "waiting for another `ember setup` to finish")
                fcntl.flock(fh, fcntl.LOCK_EX)
            self.manifest = Manifest(self.kitdir)  # re-read: the other holder may have built things
            for d in (self.kitdir, self.cache, self.debs):
                for leftover in d.glob(".tmp-*") if d.is_dir() else ():
                    kb.remove_path(leftover)
            yield

    def produce(self, step: str, key: str, final: Path, build: Any, **entry: Any) -> bool:
        """Build ``final`` with ``build(tmp_path) -> extra manifest fields`` unless it is current.

        Returns True when the output was already there (cached). The manifest entry is written
        only after the output is complete and in place.
        """
        current = self.manifest.get(step)
        if current and current.get("key") == key and final.exists():
            return True
        with kb.atomic_output(final) as tmp:
            extra = build(tmp)
        extra = extra if isinstance(extra, dict) else {}
        self.manifest.set(step, {"key": key, "path": os.path.relpath(final, self.kitdir), **entry, **extra})
        return False

    def prune(self, directory: Path, pattern: str, keep: Path) -> None:
        """Remove older outputs of the same kind (``pattern``) except ``keep``."""
        for old in directory.glob(pattern):
            if old != keep:
                kb.remove_path(old)

    def timed(self, step: str, fn: Any) -> Any:
        self.progress.start(step)
        t0 = time.monotonic()
        detail, cached, result = fn()
        self.progress.done(step, detail, time.monotonic() - t0, cached)
        return result

    # --- steps

    def packages(self) -> tuple[str, bool, None]:
        missing = kb.missing_packages(kb.HOST_PACKAGES)
        if not missing:
            return f"{len(kb.HOST_PACKAGES)} host packages present", True, None
        cmd = "apt-get install -y --no-install-recommends " + " ".join(missing)
        if not self.install_packages:
            raise kb.BuildError(f"missing host packages: {', '.join(missing)}; install them with: sudo {cmd}")
        if not kb.is_root():
            raise kb.BuildError(
                f"missing host packages: {', '.join(missing)}; Ember needs root to install them: sudo {cmd}"
            )
        self.progress.note("packages", f"installing {' '.join(missing)}")
        kb.apt_install(missing)
        still = kb.missing_packages(kb.HOST_PACKAGES)
        if still:
            raise kb.BuildError(f"apt-get install did not install: {', '.join(still)}")
        return f"installed {', '.join(missing)}", False, None

    def resolve(self) -> tuple[str, str, str]:
        may_update = self.install_packages and kb.is_root()
        try:
            return kb.resolve_debs()
        except kb.BuildError as first:
            if may_update:
                self.progress.note("kernel", "apt-get update")
                with contextlib.suppress(kb.BuildError):
                    kb.apt_get_update()
                    return kb.resolve_debs()
            kernel, initrd = self.manifest.get("kernel"), self.manifest.get("initramfs")
            if kernel and initrd and "package" in kernel:
                self.progress.note("kernel", f"apt lookup failed ({first}); keeping the current kernel")
                return kernel["package"], kernel["deb"], initrd["busybox_deb"]
            raise kb.BuildError(f"cannot find the kernel package: {first}") from first

    def kernel(self, kpkg: str, kdeb: str) -> tuple[str, bool, dict[str, Any]]:
        key = kernel_key(kdeb)
        final = self.kitdir / f"kernel-{kb.short(key)}"

        def build(tmp: Path) -> dict[str, Any]:
            self.progress.note("kernel", f"downloading {kdeb}")
            deb = kb.apt_download(kpkg, kdeb, self.debs, may_update=self.install_packages and kb.is_root())
            return {"release": kb.extract_kernel(deb, tmp)}

        cached = self.produce("kernel", key, final, build, deb=kdeb, package=kpkg)
        self.prune(self.kitdir, "kernel-*", final)
        self.prune(self.debs, "linux-image-*.deb", self.debs / kdeb)
        entry = self.manifest.get("kernel") or {}
        return entry["release"], cached, entry

    def initramfs(self, kernel: dict[str, Any], bbdeb: str) -> tuple[str, bool, dict[str, Any]]:
        key = initrd_key(init_script(), bbdeb, kernel["key"])
        final = self.kitdir / f"initrd-{kb.short(key)}.img"

        def build(tmp: Path) -> None:
            deb = kb.apt_download(
                kb.BUSYBOX_PACKAGE, bbdeb, self.debs, may_update=self.install_packages and kb.is_root()
            )
            with tempfile.TemporaryDirectory(prefix=".tmp-busybox.", dir=self.cache) as x:
                kb.deb_extract(deb, Path(x))
                busybox = (Path(x) / "bin" / "busybox").read_bytes()
            moddir = self.kitdir / kernel["path"] / "modules"
            modules = {p.stem: p.read_bytes() for p in moddir.glob("*.ko")}
            kb.build_initramfs(tmp, init_script=init_script(), busybox=busybox, modules=modules)

        cached = self.produce("initramfs", key, final, build, busybox_deb=bbdeb, kernel_key=kernel["key"])
        self.prune(self.kitdir, "initrd-*.img", final)
        self.prune(self.debs, f"{kb.BUSYBOX_PACKAGE}_*.deb", self.debs / bbdeb)
        return f"{final.stat().st_size / 1e6:.1f} MB", cached, self.manifest.get("initramfs") or {}

    def tree(self) -> tuple[str, bool, dict[str, Any]]:
        key = tree_key()
        tar = self.cache / f"runtime-{kb.short(key)}.tar"
        tree_dir = self.cache / f"runtime-tree-{kb.short(key)}"
        current = self.manifest.get("tree")
        cached = bool(current and current.get("key") == key and tar.is_file() and tree_dir.is_dir())
        if not cached:
            if not tar.is_file():
                self.progress.note("runtime tree", "mmdebstrap bookworm (python3)")
                with kb.atomic_output(tar) as tmp:
                    kb.mmdebstrap_tar(tmp)
            with kb.atomic_output(tree_dir) as tmp:
                ki.extract_tar(tar, tmp)
            self.manifest.set(
                "tree",
                {
                    "key": key,
                    "tar": os.path.relpath(tar, self.kitdir),
                    "path": os.path.relpath(tree_dir, self.kitdir),
                },
            )
        self.prune(self.cache, "runtime-*.tar", tar)
        self.prune(self.cache, "runtime-tree-*", tree_dir)
        return (
            f"{kb.SUITE} + python3 ({tar.stat().st_size / 1e6:.0f} MB tar)",
            cached,
            self.manifest.get("tree") or {},
        )

    def runtime(self, tree: dict[str, Any]) -> tuple[str, bool, dict[str, Any]]:
        payload = guest_payload()
        key = runtime_key(tree["key"], payload)
        final = self.kitdir / f"runtime-{kb.short(key)}.ext4"
        tree_dir = self.kitdir / tree["path"]

        def build(tmp: Path) -> dict[str, Any]:
            used = ki.tree_size(tree_dir) + sum(len(b) + 4096 for b in payload.values())
            size_mib = max(256, math.ceil(used * 1.3 / 2**20))
            ki.make_image(
                tree_dir, tmp, size_mib=size_mib, label=RUNTIME_LABEL,
                extra_files=payload, extra_dirs=RUNTIME_DIRS, journal=False,
            )  # fmt: skip
            return {"size_mib": size_mib}

        cached = self.produce("runtime", key, final, build, tree_key=tree["key"])
        self.prune(self.kitdir, "runtime-*.ext4", final)
        entry = self.manifest.get("runtime") or {}
        return f"{entry.get('size_mib', '?')} MiB, {len(payload)} guest files", cached, entry

    def testroot(self, tree: dict[str, Any]) -> tuple[str, bool, Path]:
        key = kb.sha256_of("testroot", str(FORMAT), ki.MKE2FS_STYLE, tree["key"], ROOTFS_LABEL, str(TESTROOT_MIB))
        final = self.kitdir / f"testroot-{kb.short(key)}.ext4"
        src = self.kitdir / tree["path"]

        def build(tmp: Path) -> None:
            ki.make_image(src, tmp, size_mib=TESTROOT_MIB, label=ROOTFS_LABEL)

        cached = self.produce("testroot", key, final, build)
        self.prune(self.kitdir, "testroot-*.ext4", final)
        return f"{TESTROOT_MIB} MiB", cached, final

    def ensure(self) -> None:
        with self.locked():
            self.timed("packages", self.packages)
            kpkg, kdeb, bbdeb = "", "", ""

            def kernel_step() -> tuple[str, bool, dict[str, Any]]:
                nonlocal kpkg, kdeb, bbdeb
                kpkg, kdeb, bbdeb = self.resolve()
                return self.kernel(kpkg, kdeb)

            kernel = self.timed("kernel", kernel_step)
            self.timed("initramfs", lambda: self.initramfs(kernel, bbdeb))
            tree = self.timed("runtime tree", self.tree)
            self.timed("runtime disk", lambda: self.runtime(tree))
