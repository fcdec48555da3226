"""Low-level pieces of the guest kit build: subprocesses, apt, .deb extraction, cpio, ext4 images.

Nothing here knows about the kit layout or the manifest; ``ember.host.kit`` composes these.
Every helper that produces a file writes it in full before anyone can see it under its final name.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

# Kernel modules the initramfs loads, in load order (init.sh carries the same list).
MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_mmio",
    "virtio_blk",
    "virtio_console",
    "virtio_rng",
    "failover",
    "net_failover",
    "virtio_net",
)

HOST_PACKAGES = ("qemu-system-x86", "qemu-utils", "busybox-static", "e2fsprogs", "cpio", "mmdebstrap")
KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"

SUITE = "bookworm"
RUNTIME_MMDEBSTRAP_ARGS = (
    "--variant=essential",
    "--include=python3-minimal,libpython3.11-stdlib",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)


class BuildError(Exception):
    """A build command failed; the message is one readable line (plus the tool's last output lines)."""


# --------------------------------------------------------------------------- subprocesses


def run(
    argv: list[str],
    *,
    what: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command quietly, capturing output; on failure raise BuildError with its last stderr lines."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BuildError(f"{what or argv[0]}: command not found: {argv[0]}") from exc
    if check and proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-5:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        raise BuildError(f"{what or ' '.join(argv)} failed (exit {proc.returncode}){detail}")
    return proc


def is_root() -> bool:
    return os.geteuid() == 0


# --------------------------------------------------------------------------- hashing and atomic output


def sha256_of(*parts: bytes | str) -> str:
    """A hex sha256 over length-prefixed parts (so ("ab", "c") and ("a", "bc") differ)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def short(key: str) -> str:
    """The part of a key used in file names."""
    return key[:16]


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def temp_sibling(final: Path) -> Path:
    """A fresh unused temp name next to ``final`` (same filesystem, so rename is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f".tmp-{final.name}.", dir=final.parent)
    os.close(fd)
    os.unlink(name)
    return Path(name)


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temp path next to ``final``; on success rename it over ``final``, on failure delete it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(final)
    try:
        yield tmp
        if not tmp.exists():
            raise BuildError(f"internal: build of {final.name} produced nothing")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists() or tmp.is_symlink():
            remove_path(tmp)


def write_atomic(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


# --------------------------------------------------------------------------- apt


def missing_packages(packages: Iterable[str]) -> list[str]:
    """Packages of ``packages`` that dpkg does not report as installed."""
    wanted = list(packages)
    proc = run(
        ["dpkg-query", "-W", "-f=${Package} ${Status}\\n", *wanted],
        what="dpkg-query",
        check=False,
    )
    installed = set()
    for line in proc.stdout.splitlines():
        name, _, status = line.partition(" ")
        if status.strip() == "install ok installed":
            installed.add(name.split(":")[0])
    return [p for p in wanted if p not in installed]


def apt_env() -> dict[str, str]:
    return {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}


def apt_get_update() -> None:
    run(["apt-get", "update"], what="apt-get update", env=apt_env())


def apt_install(packages: list[str]) -> None:
    """``apt-get install``; runs ``apt-get update`` first only if the install fails without it."""
    argv = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    try:
        run(argv, what="apt-get install", env=apt_env())
    except BuildError:
        apt_get_update()
        run(argv, what="apt-get install", env=apt_env())


def deb_file_name(package: str, version: str, arch: str) -> str:
    """The file name ``apt-get download`` gives a package (an epoch's ':' becomes '%3a')."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def parse_apt_show(text: str) -> dict[str, dict[str, str]]:
    """``apt-cache show`` output -> {package: {field: value}} (first stanza per package wins)."""
    result: dict[str, dict[str, str]] = {}
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            m = re.match(r"^([A-Za-z0-9-]+):\s?(.*)$", line)
            if m:
                fields[m.group(1)] = m.group(2)
        if "Package" in fields:
            result.setdefault(fields["Package"], fields)
    return result


def resolve_debs() -> tuple[str, str, str]:
    """Ask apt which kernel and busybox to use.

    Returns (kernel package, kernel .deb file name, busybox .deb file name). One ``apt-cache``
    call: the cloud kernel metapackage pins its ABI package's exact version in ``Depends``.
    """
    proc = run(
        ["apt-cache", "show", "--no-all-versions", KERNEL_META_PACKAGE, BUSYBOX_PACKAGE],
        what="apt-cache show",
        env={"LC_ALL": "C"},
    )
    info = parse_apt_show(proc.stdout)
    meta = info.get(KERNEL_META_PACKAGE)
    bb = info.get(BUSYBOX_PACKAGE)
    if not meta or not bb:
        raise BuildError(f"apt does not know {KERNEL_META_PACKAGE} and {BUSYBOX_PACKAGE}")
    m = re.search(r"(linux-image-[^\s,(|]+)\s*\(=\s*([^)\s]+)\)", meta.get("Depends", ""))
    if not m:
        raise BuildError(f"cannot find the kernel ABI package in {KERNEL_META_PACKAGE}'s Depends")
    kpkg, kver = m.group(1), m.group(2)
    arch = meta.get("Architecture", "amd64")
    return (
        kpkg,
        deb_file_name(kpkg, kver, arch),
        deb_file_name(BUSYBOX_PACKAGE, bb["Version"], bb["Architecture"]),
    )


def apt_download(package: str, deb_name: str, dest_dir: Path, *, may_update: bool) -> Path:
    """Download ``package`` into ``dest_dir`` as ``deb_name`` (no-op when already there)."""
    final = dest_dir / deb_name
    if final.exists():
        return final
    dest_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-download.", dir=dest_dir))
    try:
        version = deb_name.split("_")[1].replace("%3a", ":")
        argv = ["apt-get", "download", f"{package}={version}"]
        if is_root():
            # apt's _apt sandbox user cannot write into a 0700 home; download as root instead.
            argv[1:1] = ["-o", "APT::Sandbox::User=root"]
        try:
            run(argv, what=f"apt-get download {package}", cwd=work, env={"LC_ALL": "C"})
        except BuildError:
            if not may_update:
                raise
            apt_get_update()
            run(argv, what=f"apt-get download {package}", cwd=work, env={"LC_ALL": "C"})
        got = sorted(work.glob("*.deb"))
        if len(got) != 1:
            raise BuildError(f"apt-get download {package} produced {len(got)} files")
        os.replace(got[0], final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def deb_extract(deb: Path, dest: Path) -> None:
    run(["dpkg-deb", "-x", str(deb), str(dest)], what=f"dpkg-deb -x {deb.name}")


# --------------------------------------------------------------------------- kernel


def extract_kernel(deb: Path, out_dir: Path) -> str:
    """From the kernel .deb, put ``vmlinuz`` and ``modules/<name>.ko`` (flat, uncompressed) into out_dir.

    Returns the kernel release. Modules built into the kernel are skipped.
    """
    with tempfile.TemporaryDirectory(prefix=".tmp-kernel-x.", dir=out_dir.parent) as x:
        xdir = Path(x)
        deb_extract(deb, xdir)
        vmlinuz = sorted((xdir / "boot").glob("vmlinuz-*"))
        moddirs = sorted(p for p in (xdir / "lib" / "modules").glob("*") if (p / "kernel").is_dir())
        if len(vmlinuz) != 1 or len(moddirs) != 1:
            raise BuildError(f"{deb.name}: expected one boot/vmlinuz-* and one lib/modules/*")
        release = moddirs[0].name
        out_dir.mkdir(parents=True)
        shutil.copyfile(vmlinuz[0], out_dir / "vmlinuz")
        (out_dir / "modules").mkdir()
        found: dict[str, Path] = {}
        for path in (moddirs[0] / "kernel").rglob("*.ko*"):
            name = path.name.split(".ko")[0].replace("-", "_")
            if name in MODULES and path.name.endswith((".ko", ".ko.xz")):
                found.setdefault(name, path)
        builtin_file = moddirs[0] / "modules.builtin"
        builtin = builtin_file.read_text() if builtin_file.exists() else ""
        for name in MODULES:
            src = found.get(name)
            if src is None:
                if re.search(rf"/{re.escape(name).replace('_', '[_-]')}\.ko$", builtin, re.M):
                    continue
                raise BuildError(f"{deb.name}: kernel module {name} is neither a module nor built in")
            data = src.read_bytes()
            if src.name.endswith(".xz"):
                data = lzma.decompress(data)
            (out_dir / "modules" / f"{name}.ko").write_bytes(data)
        (out_dir / "release").write_text(release + "\n")
    return release


# --------------------------------------------------------------------------- initramfs


class Cpio:
    """A minimal writer for the ``newc`` cpio format the kernel unpacks as an initramfs."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._ino = 1

    def _add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = (
            self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0,
        )  # fmt: skip
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._ino += 1
        self._chunks.append(header + encoded + b"\0" * (-(len(header) + len(encoded)) % 4))
        self._chunks.append(data + b"\0" * (-len(data) % 4))

    def dir(self, name: str, perm: int = 0o755) -> None:
        self._add(name, 0o040000 | perm)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._add(name, 0o100000 | perm, data)

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._add(name, 0o020000 | perm, rdev=(major, minor))

    def getvalue(self) -> bytes:
        trailer = Cpio()
        trailer._add("TRAILER!!!", 0)
        return b"".join(self._chunks + trailer._chunks)


def build_initramfs(out: Path, *, init_script: bytes, busybox: bytes, modules: Mapping[str, bytes]) -> None:
    """Write a gzip'd newc cpio: /init, /bin/busybox, /lib/modules/*.ko, and the mountpoints init uses."""
    c = Cpio()
    for d in ("bin", "dev", "lib", "lib/modules", "newroot", "proc", "sys", "tmp"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.file("init", init_script, 0o755)
    c.file("bin/busybox", busybox, 0o755)
    for name, data in sorted(modules.items()):
        c.file(f"lib/modules/{name}.ko", data)
    out.write_bytes(gzip.compress(c.getvalue(), compresslevel=9, mtime=0))


# --------------------------------------------------------------------------- runtime tree


def host_debian_mirrors() -> list[str]:
    """``deb`` lines for mmdebstrap, from the host's Debian sources for SUITE (empty: use its default)."""
    lines: list[str] = []
    apt = Path("/etc/apt")
    texts: list[tuple[str, str]] = []
    for p in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]:
        if p.is_file() and p.suffix in (".list", ".sources"):
            with contextlib.suppress(OSError):
                texts.append((p.suffix, p.read_text()))
    for suffix, text in texts:
        if suffix == ".list":
            for raw in text.splitlines():
                m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", raw)
                if m and m.group(2).startswith(SUITE):
                    lines.append(f"deb {m.group(1)} {m.group(2)} main")
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for raw in stanza.splitlines():
                if raw.startswith("#") or ":" not in raw:
                    continue
                k, _, v = raw.partition(":")
                fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    if suite.startswith(SUITE):
                        lines.append(f"deb {uri} {suite} main")
    seen: list[str] = []
    for line in lines:
        if line not in seen:
            seen.append(line)
    return seen


def mmdebstrap_tar(out: Path) -> None:
    """Build the runtime's Debian tree as a tarball with mmdebstrap."""
    mirrors = host_debian_mirrors()
    argv = ["mmdebstrap", "--quiet", "--format=tar", *RUNTIME_MMDEBSTRAP_ARGS, SUITE, str(out), *mirrors]
    run(argv, what="mmdebstrap (runtime tree)", env={"LC_ALL": "C"})
