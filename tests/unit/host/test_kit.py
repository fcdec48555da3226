"""Unit tests of the guest kit build: keys, manifest, atomic outputs, ext4 images (no network, no VM)."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from ember.host import _kitbuild as kb
from ember.host import _kitsteps as ks
from ember.host import kit
from ember.host.kit import KitError, KitMissing, build_rootfs_image, load_kit

needs_e2fs = pytest.mark.skipif(shutil.which("mke2fs") is None, reason="needs e2fsprogs")


def fake_guest_tree(root: Path) -> Path:
    """A directory shaped like the ember package: ember/__init__.py and ember/guest/{*.py,init.sh}."""
    guest = root / "ember" / "guest"
    guest.mkdir(parents=True)
    (root / "ember" / "__init__.py").write_text('__version__ = "0"\n')
    (guest / "__init__.py").write_text("")
    (guest / "agent.py").write_text("print('agent')\n")
    (guest / "init.sh").write_text("#!/bin/busybox sh\necho hi\n")
    return guest


def label_of(image: Path) -> str:
    out = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Filesystem volume name"))


def cat_in_image(image: Path, path: str) -> bytes:
    return subprocess.run(["debugfs", "-R", f"cat {path}", str(image)], capture_output=True, check=True).stdout


# --------------------------------------------------------------------------- keys


def test_guest_payload_carries_package_init_and_every_guest_module(tmp_path: Path) -> None:
    guest = fake_guest_tree(tmp_path)
    (guest / "__pycache__").mkdir()
    (guest / "__pycache__" / "agent.cpython-311.pyc").write_bytes(b"x")
    (guest / "sub").mkdir()
    (guest / "sub" / "mod.py").write_text("x = 1\n")
    payload = ks.guest_payload(guest)
    assert sorted(payload) == [
        "/opt/ember/ember/__init__.py",
        "/opt/ember/ember/guest/__init__.py",
        "/opt/ember/ember/guest/agent.py",
        "/opt/ember/ember/guest/sub/mod.py",
    ]
    assert payload["/opt/ember/ember/guest/agent.py"] == b"print('agent')\n"


def test_runtime_key_changes_when_a_guest_file_changes(tmp_path: Path) -> None:
    guest = fake_guest_tree(tmp_path)
    first = ks.runtime_key("tree", ks.guest_payload(guest))
    assert ks.runtime_key("tree", ks.guest_payload(guest)) == first  # stable
    (guest / "agent.py").write_text("print('agent v2')\n")
    second = ks.runtime_key("tree", ks.guest_payload(guest))
    assert second != first
    (guest / "new.py").write_text("")
    third = ks.runtime_key("tree", ks.guest_payload(guest))
    assert third not in (first, second)
    assert ks.runtime_key("other tree", ks.guest_payload(guest)) != third


def test_initrd_key_follows_init_script_busybox_and_kernel() -> None:
    base = ks.initrd_key(b"init", "busybox_1.deb", "k1")
    assert ks.initrd_key(b"init2", "busybox_1.deb", "k1") != base
    assert ks.initrd_key(b"init", "busybox_2.deb", "k1") != base
    assert ks.initrd_key(b"init", "busybox_1.deb", "k2") != base
    assert kb.sha256_of("ab", "c") != kb.sha256_of("a", "bc")


# --------------------------------------------------------------------------- load_kit


def test_load_kit_on_empty_home_says_run_ember_setup(tmp_path: Path) -> None:
    with pytest.raises(KitMissing, match="ember setup"):
        load_kit(tmp_path)


def fake_built_kit(home: Path, guest: Path) -> None:
    """A manifest and files exactly as ensure_kit would leave them, for the fake guest sources."""
    kitdir = home / "kit"
    (kitdir / "kernel-k").mkdir(parents=True)
    (kitdir / "kernel-k" / "vmlinuz").write_bytes(b"kernel")
    (kitdir / "initrd-i.img").write_bytes(b"initrd")
    (kitdir / "runtime-r.ext4").write_bytes(b"ext4")
    kkey = ks.kernel_key("linux.deb")
    manifest = {
        "format": ks.FORMAT,
        "kernel": {"key": kkey, "path": "kernel-k", "release": "6.1.0-test", "deb": "linux.deb"},
        "initramfs": {
            "key": ks.initrd_key(ks.init_script(guest), "bb.deb", kkey),
            "path": "initrd-i.img",
            "busybox_deb": "bb.deb",
        },
        "tree": {"key": "t", "path": "cache/runtime-tree-t", "tar": "cache/runtime-t.tar"},
        "runtime": {"key": ks.runtime_key("t", ks.guest_payload(guest)), "path": "runtime-r.ext4"},
    }
    (kitdir / "manifest.json").write_text(json.dumps(manifest))


def test_load_kit_returns_the_built_kit_and_refuses_a_stale_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guest = fake_guest_tree(tmp_path / "src")
    monkeypatch.setattr(kit, "guest_source_dir", lambda: guest)
    home = tmp_path / "home"
    fake_built_kit(home, guest)

    loaded = load_kit(home)
    assert loaded.kernel == home / "kit" / "kernel-k" / "vmlinuz"
    assert loaded.initrd.read_bytes() == b"initrd"
    assert loaded.kernel_release == "6.1.0-test"
    assert len(loaded.key) == 16

    (guest / "agent.py").write_text("print('changed')\n")
    with pytest.raises(KitMissing, match=r"stale.*ember setup"):
        load_kit(home)
    (guest / "agent.py").write_text("print('agent')\n")
    assert load_kit(home) == loaded
    (guest / "init.sh").write_text("#!/bin/busybox sh\necho changed\n")
    with pytest.raises(KitMissing, match=r"init\.sh.*ember setup"):
        load_kit(home)


def test_load_kit_refuses_a_kit_whose_files_are_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guest = fake_guest_tree(tmp_path / "src")
    monkeypatch.setattr(kit, "guest_source_dir", lambda: guest)
    fake_built_kit(tmp_path / "home", guest)
    (tmp_path / "home" / "kit" / "runtime-r.ext4").unlink()
    with pytest.raises(KitMissing, match="ember setup"):
        load_kit(tmp_path / "home")


# --------------------------------------------------------------------------- atomic outputs


def test_failed_step_leaves_no_manifest_entry_and_no_file(tmp_path: Path) -> None:
    builder = ks.Builder(tmp_path, None)
    final = builder.kitdir / "initrd-abc.img"

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half an initramfs")
        raise kb.BuildError("boom")

    with builder.locked(), pytest.raises(kb.BuildError, match="boom"):
        builder.produce("initramfs", "abc", final, half_then_fail)
    assert not final.exists()
    assert [p.name for p in builder.kitdir.iterdir() if p.name.startswith(".tmp")] == []
    manifest = builder.kitdir / "manifest.json"
    assert not manifest.exists() or "initramfs" not in json.loads(manifest.read_text())

    with builder.locked():
        assert builder.produce("initramfs", "abc", final, lambda tmp: tmp.write_bytes(b"ok")) is False
        assert builder.produce("initramfs", "abc", final, lambda tmp: pytest.fail("rebuilt")) is True
    assert final.read_bytes() == b"ok"
    assert json.loads(manifest.read_text())["initramfs"]["key"] == "abc"


def test_interrupted_build_leftovers_are_cleaned_up(tmp_path: Path) -> None:
    builder = ks.Builder(tmp_path, None)
    builder.cache.mkdir(parents=True)
    (builder.kitdir / ".tmp-runtime-x.ext4.abcd").write_bytes(b"partial")
    (builder.cache / ".tmp-runtime-y.tar.abcd").mkdir()
    with builder.locked():
        pass
    assert not list(builder.kitdir.glob(".tmp-*")) and not list(builder.cache.glob(".tmp-*"))


def test_ensure_kit_without_install_names_the_apt_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb, "missing_packages", lambda pkgs: ["qemu-utils"])
    with pytest.raises(KitError, match=r"sudo apt-get install .*qemu-utils"):
        kit.ensure_kit(tmp_path, install_packages=False)
    assert not (tmp_path / "kit" / "manifest.json").exists()


# --------------------------------------------------------------------------- apt parsing


def test_resolve_debs_reads_the_pinned_kernel_abi_package(monkeypatch: pytest.MonkeyPatch) -> None:
    show = (
        "Package: linux-image-cloud-amd64\nVersion: 6.1.192-2\nArchitecture: amd64\n"
        "Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)\n\n"
        "Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: amd64\n"
    )
    monkeypatch.setattr(kb, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, show, ""))
    assert kb.resolve_debs() == (
        "linux-image-6.1.0-56-cloud-amd64",
        "linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb",
        "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb",
    )


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_extract_kernel_flattens_and_decompresses_modules(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    rel = "6.1.0-t-cloud-amd64"
    mods = root / "lib" / "modules" / rel / "kernel"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / f"vmlinuz-{rel}").write_bytes(b"bzImage")
    for name in kb.MODULES:
        if name == "virtio_rng":
            continue  # listed as built in below
        path = mods / "drivers" / f"{name.replace('_', '-') if name == 'virtio_net' else name}.ko"
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "virtio_blk":
            path.with_suffix(".ko.xz").write_bytes(lzma.compress(b"ELF virtio_blk"))
        else:
            path.write_bytes(f"ELF {name}".encode())
    (root / "lib" / "modules" / rel / "modules.builtin").write_text("kernel/drivers/char/hw_random/virtio-rng.ko\n")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        "Package: fake-kernel\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: t\n"
    )
    deb = tmp_path / "fake.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)

    out = tmp_path / "out" / "kernel"
    out.parent.mkdir()
    assert kb.extract_kernel(deb, out) == rel
    assert (out / "vmlinuz").read_bytes() == b"bzImage"
    assert (out / "modules" / "virtio_blk.ko").read_bytes() == b"ELF virtio_blk"
    assert (out / "modules" / "virtio_net.ko").read_bytes() == b"ELF virtio_net"
    assert not (out / "modules" / "virtio_rng.ko").exists()


# --------------------------------------------------------------------------- initramfs


@pytest.mark.skipif(shutil.which("cpio") is None, reason="needs cpio")
def test_initramfs_is_a_newc_cpio_the_cpio_tool_reads(tmp_path: Path) -> None:
    out = tmp_path / "initrd.img"
    kb.build_initramfs(out, init_script=b"#!/bin/busybox sh\n", busybox=b"BB", modules={"virtio": b"KO"})
    raw = gzip.decompress(out.read_bytes())
    listing = subprocess.run(["cpio", "-itv"], input=raw, capture_output=True, check=True).stdout.decode()
    names = {line.split()[-1] for line in listing.splitlines()}
    assert {"init", "bin/busybox", "lib/modules/virtio.ko", "dev/console", "newroot", "proc"} <= names
    assert any(line.startswith("-rwxr-xr-x") and line.endswith(" init") for line in listing.splitlines())
    init = subprocess.run(["cpio", "-i", "--to-stdout", "init"], input=raw, capture_output=True, check=True)
    assert init.stdout == b"#!/bin/busybox sh\n"


def test_repo_init_script_is_a_busybox_script_that_hands_over_to_the_agent() -> None:
    text = ks.init_script().decode()
    assert text.startswith("#!/bin/busybox sh\n")
    assert "switch_root /newroot" in text and "-m ember.guest.agent" in text
    assert all(m in text for m in kb.MODULES)


# --------------------------------------------------------------------------- ext4 images


@needs_e2fs
def test_build_rootfs_image_from_a_directory(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("original\n")
    (tree / "usr" / "bin").mkdir(parents=True)
    out = build_rootfs_image(
        tree,
        tmp_path / "root.ext4",
        size_mib=16,
        label="ember-root",
        extra_files={"/etc/hostname": b"replaced\n", "/opt/app/main.py": b"print(1)\n"},
    )
    assert label_of(out) == "ember-root"
    assert cat_in_image(out, "/opt/app/main.py") == b"print(1)\n"
    assert cat_in_image(out, "/etc/hostname") == b"replaced\n"
    assert (tree / "etc" / "hostname").read_text() == "original\n"  # the source is untouched
    assert not (tree / "opt").exists()
    fsck = subprocess.run(["e2fsck", "-fn", str(out)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


@needs_e2fs
def test_build_rootfs_image_from_a_tarball(tmp_path: Path) -> None:
    tar_path = tmp_path / "root.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name, data in (("./etc/os-release", b"ID=test\n"), ("./bin/app", b"#!/bin/sh\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    out = build_rootfs_image(tar_path, tmp_path / "img.ext4", size_mib=16, label="from-tar",
                             extra_files={"etc/extra": b"x"})  # fmt: skip
    assert label_of(out) == "from-tar"
    assert cat_in_image(out, "/etc/os-release") == b"ID=test\n"
    assert cat_in_image(out, "/etc/extra") == b"x"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


@needs_e2fs
def test_build_rootfs_image_too_small_fails_cleanly(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big").write_bytes(b"\1" * (6 * 2**20))
    out = tmp_path / "small.ext4"
    with pytest.raises(KitError):
        build_rootfs_image(tree, out, size_mib=4)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
