"""Which accelerator this host can use, and the host facts a TCG guest needs (TSC rate)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ember.errors import InvalidInput

from . import Accel

ACCEL_ENV = "EMBER_ACCEL"
# Debian kernels run at HZ=250; lpj is TSC cycles per jiffy, which skips the delay-loop calibration.
GUEST_HZ = 250


@dataclass(frozen=True)
class AccelChoice:
    accel: Accel
    reason: str


def choose_accel(override: str | None = None) -> AccelChoice:
    """KVM where ordinary guests run, else TCG; ``EMBER_ACCEL`` (or ``override``) forces one.

    A PVM host (``kvm_pvm`` loaded) opens /dev/kvm fine but hangs ordinary guest
    kernels in early boot, so it counts as no KVM.
    """
    forced = override if override is not None else os.environ.get(ACCEL_ENV, "")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise InvalidInput(ACCEL_ENV, f"must be 'kvm' or 'tcg', not {forced!r}")
        return AccelChoice(forced, f"forced by {ACCEL_ENV}")  # type: ignore[arg-type]
    if Path("/sys/module/kvm_pvm").exists():
        return AccelChoice("tcg", "KVM here is PVM, which only runs PVM-enlightened guests")
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return AccelChoice("tcg", f"/dev/kvm unusable: {exc.strerror}")
    os.close(fd)
    return AccelChoice("kvm", "/dev/kvm usable")


_TSC_PATTERNS = (
    re.compile(r"tsc: Refined TSC clocksource calibration: ([0-9.]+) MHz"),
    re.compile(r"tsc: Detected ([0-9.]+) MHz"),
)


def host_tsc_khz() -> int:
    """The host's TSC rate in kHz.

    Under TCG the guest's TSC runs at the host's rate, and the guest must be told
    that rate (``tsc_early_khz``) because calibrating it on a busy host hangs or
    guesses wrong; a wrong value makes guest time run fast or slow.
    """
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/tsc_freq_khz").read_text())
    except (OSError, ValueError):
        pass
    for cmd in (["dmesg"], ["journalctl", "-k", "-b", "--no-pager"]):
        try:
            log = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for pattern in _TSC_PATTERNS:
            m = pattern.search(log)
            if m:
                return int(float(m.group(1)) * 1000)
    # Last resort: the nominal clock. Right on most modern CPUs (constant TSC), and
    # the guest-clock test would catch a host where it is not.
    text = Path("/proc/cpuinfo").read_text()
    m = re.search(r"model name.*@ ([0-9.]+)GHz", text) or None
    if m:
        return int(float(m.group(1)) * 1_000_000)
    m2 = re.search(r"cpu MHz\s*:\s*([0-9.]+)", text)
    return int(float(m2.group(1)) * 1000) if m2 else 2_400_000


def tcg_cmdline(tsc_khz: int) -> str:
    """Kernel arguments that let a TCG guest boot on a busy host (no TSC calibration)."""
    return f"no_timer_check tsc_early_khz={tsc_khz} lpj={tsc_khz * 1000 // GUEST_HZ}"
