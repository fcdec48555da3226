"""Per-VM resource bounds, enforced before anything is started."""

from __future__ import annotations

from ember.errors import InvalidInput

MIN_MEMORY_MIB = 128
MAX_MEMORY_MIB = 32768
DEFAULT_MEMORY_MIB = 512
MIN_VCPUS = 1
MAX_VCPUS = 16
MAX_DISK_MIB = 32768
DEFAULT_DISK_MIB = 2048


def default_vcpus(memory_mib: int) -> int:
    """One vCPU per 2 GiB of memory, at least 1 and at most MAX_VCPUS."""
    return max(MIN_VCPUS, min(MAX_VCPUS, memory_mib // 2048))


def check_resources(memory_mib: int, vcpus: int, disk_mib: int | None = None) -> None:
    """Raise InvalidInput naming the first field outside its bound."""
    if not MIN_MEMORY_MIB <= memory_mib <= MAX_MEMORY_MIB:
        raise InvalidInput("memory_mib", f"{memory_mib} is outside {MIN_MEMORY_MIB}..{MAX_MEMORY_MIB} MiB")
    if not MIN_VCPUS <= vcpus <= MAX_VCPUS:
        raise InvalidInput("vcpus", f"{vcpus} is outside {MIN_VCPUS}..{MAX_VCPUS}")
    if disk_mib is not None and not 1 <= disk_mib <= MAX_DISK_MIB:
        raise InvalidInput("disk_mib", f"{disk_mib} is outside 1..{MAX_DISK_MIB} MiB")
