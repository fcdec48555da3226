"""`ember setup` command line: help text, and errors rendered as one red line with exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ember.cli.main import main
from ember.host import kit


def test_setup_help_renders_with_an_example() -> None:
    result = CliRunner().invoke(main, ["setup", "--help"])
    assert result.exit_code == 0, result.output
    assert "Install and build what Ember needs to boot VMs" in result.output
    assert "Example" in result.output and "$ sudo ember setup" in result.output
    assert "--no-install" in result.output and "--json" in result.output


def test_main_help_lists_setup() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "setup" in result.output


def test_setup_error_is_one_line_and_exit_code_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(**kwargs: object) -> kit.Kit:
        raise kit.KitError("missing host packages: qemu-utils; install them with: sudo apt-get install qemu-utils")

    monkeypatch.setattr(kit, "ensure_kit", fail)
    result = CliRunner().invoke(main, ["setup", "--no-install"])
    assert result.exit_code == 1
    assert "error:" in result.output and "sudo apt-get install qemu-utils" in result.output
    assert "Traceback" not in result.output


def test_setup_json_prints_the_kit_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built = kit.Kit(tmp_path / "vmlinuz", tmp_path / "initrd.img", tmp_path / "rt.ext4", "6.1.0-t", "abc")
    seen: dict[str, object] = {}

    def fake(**kwargs: object) -> kit.Kit:
        seen.update(kwargs)
        return built

    monkeypatch.setattr(kit, "ensure_kit", fake)
    result = CliRunner().invoke(main, ["setup", "--json", "--no-install"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kernel"] == str(tmp_path / "vmlinuz") and data["kernel_release"] == "6.1.0-t"
    assert seen["install_packages"] is False
