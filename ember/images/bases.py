"""Managed base images: Debian root filesystems built locally with mmdebstrap, cached by content.

``debian-bookworm`` is Debian's minbase; ``python-3.11`` adds Python with pip and
venv, ``python``/``pip`` on PATH and pip allowed to install system-wide, as in the
official ``python`` container image. Each is an ext4 image (label ``ember-root``)
under ``$EMBER_HOME/bases/<name>/<version>/``, where the version is the build
date plus a key of everything it was built from; a rebuild with the same inputs
is a no-op.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ember.errors import HostError, NotFound
from ember.host._kitbuild import host_debian_mirrors, run
from ember.host._kitimage import make_image
from ember.settings import ember_home

SUITE = "bookworm"
ROOTFS_LABEL = "ember-root"
# Root filesystem size: the base plus room for what Dockerfile steps install.
BASE_DISK_MIB = 2048
_EXCLUDES = ("--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
             "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright")


@dataclass(frozen=True)
class BaseRecipe:
    """How a managed base is built; its key changes whenever any of this does."""

    name: str
    description: str
    packages: tuple[str, ...]
    customize: tuple[str, ...] = ()

    def key(self) -> str:
        text = json.dumps([SUITE, self.packages, self.customize, _EXCLUDES, BASE_DISK_MIB, ROOTFS_LABEL])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


MANAGED_BASES: dict[str, BaseRecipe] = {
    "debian-bookworm": BaseRecipe(
        name="debian-bookworm",
        description="Debian 12 (bookworm) minbase",
        packages=("ca-certificates",),
    ),
    "python-3.11": BaseRecipe(
        name="python-3.11",
        description="Debian 12 with Python 3.11, pip and venv",
        packages=("ca-certificates", "python3", "python3-pip", "python3-venv"),
        customize=(
            'ln -sf /usr/bin/python3 "$1/usr/local/bin/python"',
            'ln -sf /usr/bin/pip3 "$1/usr/local/bin/pip"',
            # The official image lets `pip install` write system-wide; Debian's marker forbids it.
            'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
        ),
    ),
}


@dataclass(frozen=True)
class BaseImage:
    """One built version of a managed base."""

    name: str
    version: str
    rootfs: Path
    created_at: float
    description: str


def bases_dir(home: Path | None = None) -> Path:
    return (home or ember_home()) / "bases"


def list_bases(home: Path | None = None) -> list[BaseImage]:
    """Every built version of every managed base, oldest first."""
    found = []
    for manifest in sorted(bases_dir(home).glob("*/*/manifest.json")):
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        found.append(BaseImage(data["name"], data["version"], manifest.parent / "rootfs.ext4",
                               data["created_at"], data["description"]))
    return sorted(found, key=lambda b: b.created_at)


def get_base(name: str, version: str | None = None, home: Path | None = None) -> BaseImage:
    """A built base by name (and version; default the newest)."""
    if name not in MANAGED_BASES:
        raise NotFound(f"no managed base image {name!r}; available: {', '.join(MANAGED_BASES)}")
    versions = [b for b in list_bases(home) if b.name == name and (version is None or b.version == version)]
    if not versions:
        raise NotFound(f"managed base image {name!r} version {version or 'latest'} is not built: "
                       f"run `ember setup --bases`")
    return versions[-1]


def ensure_base(name: str, home: Path | None = None, progress: Callable[[str], None] | None = None) -> BaseImage:
    """Build ``name`` if no version with the current recipe exists; return the current version."""
    recipe = MANAGED_BASES.get(name)
    if recipe is None:
        raise NotFound(f"no managed base image {name!r}; available: {', '.join(MANAGED_BASES)}")
    root = bases_dir(home) / name
    root.mkdir(parents=True, exist_ok=True)
    key = recipe.key()
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for existing in list_bases(home):
            if existing.name == name and existing.version.endswith("." + key):
                return existing
        version = time.strftime("%Y%m%d", time.gmtime()) + "." + key
        if progress:
            progress(f"building managed base {name} {version} with mmdebstrap")
        with tempfile.TemporaryDirectory(prefix=f".build-{name}-", dir=root) as work:
            tar = Path(work) / "root.tar"
            hooks = [f"--customize-hook={cmd}" for cmd in recipe.customize]
            try:
                run(["mmdebstrap", "--quiet", "--format=tar", "--variant=minbase",
                     f"--include={','.join(recipe.packages)}", *_EXCLUDES, *hooks, SUITE, str(tar),
                     *host_debian_mirrors()], what=f"mmdebstrap ({name})", env={"LC_ALL": "C"})
            except Exception as exc:
                raise HostError(f"building managed base {name} failed: {exc}") from exc
            staged = Path(work) / version
            staged.mkdir()
            make_image(tar, staged / "rootfs.ext4", size_mib=BASE_DISK_MIB, label=ROOTFS_LABEL)
            created = time.time()
            (staged / "manifest.json").write_text(json.dumps(
                {"name": name, "version": version, "created_at": created, "description": recipe.description,
                 "packages": list(recipe.packages)}, indent=2))
            dest = root / version
            shutil.rmtree(dest, ignore_errors=True)
            staged.rename(dest)
        return BaseImage(name, version, dest / "rootfs.ext4", created, recipe.description)
