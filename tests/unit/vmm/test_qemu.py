"""QEMU command lines: fixed device order, RAM sharing, incoming mode."""

from __future__ import annotations

from pathlib import Path

from ember.vmm import Drive, MachineSpec
from ember.vmm.qemu import qemu_argv


def _spec(shared: bool) -> MachineSpec:
    return MachineSpec(kernel=Path("/k"), initrd=Path("/i"), memory_mib=256, vcpus=2, accel="tcg",
                       drives=(Drive(Path("/rt.ext4"), "raw", True), Drive(Path("/d.qcow2"))),
                       ram_path=Path("/ram"), ram_shared=shared, cmdline="console=ttyS0")


def test_clone_and_template_differ_only_in_storage() -> None:
    a = qemu_argv(_spec(True), Path("/w"), incoming=False)
    b = qemu_argv(_spec(False), Path("/w"), incoming=True)
    assert "share=on" in " ".join(a) and "share=off" in " ".join(b)
    assert b[-2:] == ["-incoming", "defer"]
    devices = lambda argv: [x for i, x in enumerate(argv) if argv[i - 1] == "-device"]  # noqa: E731
    assert devices(a) == devices(b)


def test_drives_keep_their_order_and_read_only_flag() -> None:
    argv = " ".join(qemu_argv(_spec(True), Path("/w"), incoming=False))
    assert argv.index("/rt.ext4") < argv.index("/d.qcow2")
    assert "file=/rt.ext4,format=raw,if=none,cache=writeback,readonly=on" in argv


def test_spec_json_round_trip() -> None:
    spec = _spec(False)
    assert MachineSpec.from_json(spec.to_json()) == spec
