"""The guest kit: the kernel, initramfs and read-only runtime disk every Ember VM boots with.

``ensure_kit`` builds it under ``$EMBER_HOME/kit/`` (this is what ``ember setup`` runs);
``load_kit`` finds the built kit quickly and refuses a missing or stale one.

Layout::

    kit/manifest.json            which keyed outputs are current (written after each step)
    kit/kernel-<key>/vmlinuz     + modules/*.ko (flat, uncompressed) + release
    kit/initrd-<key>.img         gzip'd newc cpio: busybox, the virtio modules, ember/guest/init.sh as /init
    kit/runtime-<key>.ext4       Debian essential + python3 + /opt/ember/ember/guest/*.py (ember-runtime)
    kit/testroot-<key>.ext4      a rootfs for tests (the runtime's Debian tree, label ember-root)
    kit/cache/                   downloaded .debs, the runtime tarball and its unpacked tree

Each step has a content key (sha256 of its inputs). A step is skipped when the manifest holds
the same key and its output exists. Outputs are built under a temp name and renamed into
place, so an interrupted build never leaves a half file that looks done. Building a newer
output of a kind removes the older ones.

The pieces: ``_kitsteps`` (steps, keys, manifest), ``_kitbuild`` (apt, kernel, initramfs,
mmdebstrap), ``_kitimage`` (ext4 images).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ember import errors
from ember.settings import ember_home

from . import _kitbuild as kb
from . import _kitimage as ki
from ._kitsteps import (
    RUNTIME_LABEL,
    Builder,
    Manifest,
    Progress,
    guest_payload,
    guest_source_dir,
    init_script,
    initrd_key,
    kit_key,
    runtime_key,
)

SETUP_HINT = "run `ember setup`"


class KitError(errors.HostError):
    """Building or finding the guest kit failed."""


class KitMissing(KitError, errors.KitMissing):
    """The guest kit is not built, or is stale: run `ember setup`."""


@dataclass(frozen=True)
class Kit:
    kernel: Path  # vmlinuz
    initrd: Path  # initramfs (cpio.gz)
    runtime_disk: Path  # read-only ext4 image, label ember-runtime
    kernel_release: str  # e.g. 6.1.0-41-cloud-amd64
    key: str  # content key of this kit


@contextlib.contextmanager
def _as_kit_errors() -> Iterator[None]:
    try:
        yield
    except kb.BuildError as exc:
        raise KitError(str(exc)) from exc


def _kit_from_manifest(kitdir: Path, manifest: Manifest) -> Kit:
    kernel, initrd, runtime, tree = (manifest.get(s) for s in ("kernel", "initramfs", "runtime", "tree"))
    if not (kernel and initrd and runtime and tree):
        raise KitMissing(f"the guest kit is not built in {kitdir}: {SETUP_HINT}")
    kit = Kit(
        kernel=kitdir / kernel["path"] / "vmlinuz",
        initrd=kitdir / initrd["path"],
        runtime_disk=kitdir / runtime["path"],
        kernel_release=kernel["release"],
        key=kit_key(kernel["key"], initrd["key"], runtime["key"]),
    )
    for path in (kit.kernel, kit.initrd, kit.runtime_disk):
        if not path.is_file():
            raise KitMissing(f"the guest kit is incomplete ({path} is missing): {SETUP_HINT}")
    guest_dir = guest_source_dir()
    if initrd["key"] != initrd_key(init_script(guest_dir), initrd["busybox_deb"], kernel["key"]):
        raise KitMissing(f"the guest kit is stale (ember/guest/init.sh changed): {SETUP_HINT}")
    if runtime["key"] != runtime_key(tree["key"], guest_payload(guest_dir)):
        raise KitMissing(f"the guest kit is stale (ember/guest sources changed): {SETUP_HINT}")
    return kit


def load_kit(home: Path | None = None) -> Kit:
    """The built kit, without building anything; KitMissing if it is not built or is stale."""
    kitdir = (home or ember_home()) / "kit"
    return _kit_from_manifest(kitdir, Manifest(kitdir))


def ensure_kit(home: Path | None = None, progress: Progress | None = None, install_packages: bool = True) -> Kit:
    """Install what is missing and build (or reuse) the kernel, initramfs and runtime disk.

    ``install_packages=False`` only checks the host packages (KitError names the apt command).
    """
    builder = Builder(home or ember_home(), progress, install_packages)
    with _as_kit_errors():
        builder.ensure()
    return _kit_from_manifest(builder.kitdir, builder.manifest)


def test_rootfs(home: Path | None = None, progress: Progress | None = None) -> Path:
    """A cached ext4 rootfs for tests: the runtime's Debian tree (has python3), label ember-root, 1 GiB.

    Shared and meant to stay unchanged: boot it through a copy-on-write overlay, or copy it first.
    """
    b = Builder(home or ember_home(), progress)
    with _as_kit_errors(), b.locked():
        tree = b.timed("runtime tree", b.tree)
        return b.timed("test rootfs", lambda: b.testroot(tree))


test_rootfs.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test


def build_rootfs_image(
    tree_or_tar: Path,
    out: Path,
    size_mib: int = 2048,
    label: str = "ember-root",
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Make an ext4 image (``mke2fs -d``, no mount) from a directory or a tarball, plus ``extra_files``.

    ``extra_files`` maps absolute guest paths to contents (mode 0644, parent dirs created).
    The source directory is left unchanged; ``out`` appears only once complete.
    """
    out = Path(out)
    with _as_kit_errors(), kb.atomic_output(out) as tmp:
        ki.make_image(Path(tree_or_tar), tmp, size_mib=size_mib, label=label, extra_files=extra_files)
    return out


def kit_sizes(kit: Kit) -> dict[str, int]:
    """Bytes each kit file takes on disk (the images are sparse)."""
    return {
        name: path.stat().st_blocks * 512 if path.exists() else 0
        for name, path in (("kernel", kit.kernel), ("initrd", kit.initrd), ("runtime_disk", kit.runtime_disk))
    }


__all__ = [
    "RUNTIME_LABEL",
    "Kit",
    "KitError",
    "KitMissing",
    "Progress",
    "build_rootfs_image",
    "ensure_kit",
    "kit_sizes",
    "load_kit",
    "test_rootfs",
]
