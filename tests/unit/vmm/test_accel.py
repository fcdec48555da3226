"""Accelerator choice and the host TSC rate."""

from __future__ import annotations

import pytest

from ember.errors import InvalidInput
from ember.vmm import accel


def test_override_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(accel.ACCEL_ENV, "tcg")
    assert accel.choose_accel().accel == "tcg"
    assert accel.choose_accel("kvm").accel == "kvm"


def test_bad_override_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(accel.ACCEL_ENV, "hvf")
    with pytest.raises(InvalidInput, match="EMBER_ACCEL: must be 'kvm' or 'tcg'"):
        accel.choose_accel()


def test_pvm_host_gets_tcg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(accel.ACCEL_ENV, raising=False)
    real_exists = accel.Path.exists
    monkeypatch.setattr(accel.Path, "exists", lambda self: str(self) == "/sys/module/kvm_pvm" or real_exists(self))
    choice = accel.choose_accel()
    assert choice.accel == "tcg" and "PVM" in choice.reason


def test_tsc_rate_is_plausible() -> None:
    khz = accel.host_tsc_khz()
    assert 500_000 < khz < 10_000_000


def test_tcg_cmdline_skips_calibration() -> None:
    line = accel.tcg_cmdline(2_400_000)
    assert "tsc_early_khz=2400000" in line and "lpj=9600000" in line and "no_timer_check" in line
