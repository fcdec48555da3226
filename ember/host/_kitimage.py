"""ext4 root-filesystem images from a directory or a tarball, built with ``mke2fs -d`` (no mount)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from ._kitbuild import BuildError, is_root, remove_path, run


def extract_tar(tar: Path, dest: Path) -> None:
    """Unpack a root-filesystem tarball into ``dest`` (device nodes under /dev are skipped)."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = [
        "tar",
        "-x",
        "-f",
        str(tar),
        "-C",
        str(dest),
        "--numeric-owner",
        "--exclude=./dev/*",
        "--exclude=dev/*",
    ]
    if is_root():
        argv += ["--same-owner", "--same-permissions"]
    run(argv, what=f"tar -x {tar.name}")


def tree_size(root: Path) -> int:
    """Bytes used by a directory tree (hard links counted once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def _safe_rel(name: str) -> Path:
    rel = Path(name.lstrip("/"))
    if not rel.parts or any(p in ("..", "") for p in rel.parts):
        raise ValueError(f"bad path in image: {name!r}")
    return rel


def add_to_tree(root: Path, files: Mapping[str, bytes], dirs: Iterable[str] = ()) -> None:
    """Write extra files and dirs into ``root``.

    Existing files are unlinked first: they may be hard links into a cached tree.
    """
    for d in dirs:
        (root / _safe_rel(d)).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        dest = root / _safe_rel(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        dest.write_bytes(data)
        dest.chmod(0o644)


def link_copy(src: Path, dest: Path) -> None:
    """Copy a tree cheaply: hard links when on the same filesystem, else a full copy."""
    proc = run(["cp", "-al", str(src), str(dest)], check=False)
    if proc.returncode != 0:
        remove_path(dest)
        run(["cp", "-a", str(src), str(dest)], what="cp -a")


# Part of the content keys of images: change it whenever mke2fs's options below change.
MKE2FS_STYLE = "ext4 4k-blocks no-reserve root-owner-0 v1"


def mke2fs(tree: Path, out: Path, *, size_mib: int, label: str, journal: bool = True) -> None:
    """Make an ext4 image of ``size_mib`` MiB at ``out`` holding ``tree`` (no mount needed)."""
    if len(label.encode()) > 16:
        raise ValueError(f"ext4 label too long (max 16 bytes): {label!r}")
    argv = [
        "mke2fs",
        "-q",
        "-F",
        "-t",
        "ext4",
        "-L",
        label,
        "-b",
        "4096",
        "-m",
        "0",
        "-E",
        "root_owner=0:0",
        "-d",
        str(tree),
    ]
    if not journal:
        argv += ["-O", "^has_journal"]
    argv += [str(out), f"{size_mib}M"]
    proc = run(argv, what="mke2fs", check=False, env={"LC_ALL": "C"})
    if proc.returncode != 0:
        text = (proc.stderr + proc.stdout).strip()
        if "Could not allocate" in text or "No space left" in text or "inode" in text.lower():
            raise BuildError(f"the filesystem content does not fit in {size_mib} MiB ({label}): {text[-300:]}")
        raise BuildError(f"mke2fs failed (exit {proc.returncode}): {text[-500:]}")


def make_image(
    src: Path,
    out: Path,
    *,
    size_mib: int,
    label: str,
    extra_files: Mapping[str, bytes] | None = None,
    extra_dirs: Iterable[str] = (),
    journal: bool = True,
) -> None:
    """Write an ext4 image of ``src`` (a directory or a tarball) plus extras to ``out`` (not atomic).

    A directory is never modified: extras go into a hard-linked copy of it.
    """
    extra_files = dict(extra_files or {})
    extra_dirs = list(extra_dirs)
    with tempfile.TemporaryDirectory(prefix=".tmp-image.", dir=out.parent) as work:
        staging = Path(work) / "root"
        if src.is_dir():
            if extra_files or extra_dirs:
                link_copy(src, staging)
            else:
                staging = src
        elif src.is_file():
            extract_tar(src, staging)
        else:
            raise BuildError(f"no such directory or tarball: {src}")
        if extra_files or extra_dirs:
            add_to_tree(staging, extra_files, extra_dirs)
        mke2fs(staging, out, size_mib=size_mib, label=label, journal=journal)
