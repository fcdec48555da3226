"""Disk images: qcow2 overlays on frozen bases, and what they really occupy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from ember.errors import HostError

QEMU_IMG = "qemu-img"


def image_format(path: Path) -> str:
    """``qcow2`` or ``raw``, read from the file's header (never trusted from a name)."""
    with open(path, "rb") as f:
        return "qcow2" if f.read(4) == b"QFI\xfb" else "raw"


def create_overlay(base: Path, overlay: Path) -> Path:
    """A qcow2 overlay whose reads fall through to ``base``; ``base`` must never change afterwards."""
    base = base.resolve()
    if not base.is_file():
        raise HostError(f"base disk {base} does not exist")
    overlay.parent.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", image_format(base),
                          "-b", str(base), str(overlay)], capture_output=True, text=True)
    if res.returncode != 0:
        raise HostError(f"qemu-img create failed for {overlay}: {res.stderr.strip()}")
    return overlay


def virtual_size_bytes(path: Path) -> int:
    res = subprocess.run([QEMU_IMG, "info", "--output=json", "-U", str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        raise HostError(f"qemu-img info failed for {path}: {res.stderr.strip()}")
    return int(json.loads(res.stdout)["virtual-size"])


def allocated_bytes(path: Path) -> int:
    """Bytes a (sparse) file really occupies on disk."""
    return os.stat(path).st_blocks * 512


def link_or_copy(src: Path, dest: Path) -> Path:
    """Pin ``src`` under ``dest``: a hard link when possible (same filesystem), else a copy."""
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)
    return dest


def sparse_file(path: Path, size_bytes: int) -> Path:
    """A file of ``size_bytes`` that occupies nothing until written."""
    with open(path, "wb") as f:
        f.truncate(size_bytes)
    return path
