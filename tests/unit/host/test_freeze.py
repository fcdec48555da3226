"""Freezing a VM's disk into a layer others read: its header must still name the backing the host gave it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ember.errors import HostError
from ember.host.host import VM, _check_backing
from ember.vmm import Drive, MachineSpec


def vm_with_overlay(tmp_path: Path, header_backing: Path, recorded: Path) -> tuple[VM, Path]:
    for base in {header_backing, recorded}:
        base.write_bytes(b"\0" * 4096)
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(header_backing), str(disk)],
                   check=True)
    spec = MachineSpec(kernel=tmp_path / "k", initrd=tmp_path / "i", memory_mib=128, vcpus=1, accel="tcg",
                       drives=(Drive(tmp_path / "rt", "raw", read_only=True), Drive(disk, backing=recorded)),
                       ram_path=None, ram_shared=False, cmdline="")
    return VM("mvm-1", tmp_path, spec), disk


def test_a_disk_still_naming_its_recorded_backing_may_freeze(tmp_path: Path) -> None:
    vm, disk = vm_with_overlay(tmp_path, tmp_path / "base.raw", tmp_path / "base.raw")
    _check_backing(vm, disk)


def test_a_disk_whose_header_was_rewritten_is_not_frozen(tmp_path: Path) -> None:
    vm, disk = vm_with_overlay(tmp_path, tmp_path / "another-tenants-disk.raw", tmp_path / "base.raw")
    with pytest.raises(HostError, match="backing file Ember did not give it"):
        _check_backing(vm, disk)
