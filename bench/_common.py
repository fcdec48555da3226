"""Shared bench helpers: machine facts, medians, JSON results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine_info(accel: str) -> dict[str, Any]:
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    return {"host_kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "qemu": qemu.splitlines()[0] if qemu else "?", "accel": accel, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def summary(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "runs": len(values), "values": [round(v, 4) for v in values]}


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def smaps_memory(pid: int, mapped_file: Path) -> dict[str, int]:
    """RSS and PSS of a process, in total and for its mapping of ``mapped_file``, in bytes.

    PSS splits pages shared with other processes (QEMU's code, libraries) among them, so
    ``pss - pss_guest`` is what one more VM really costs the host beyond its guest pages.
    """
    out = {"rss": 0, "pss": 0, "rss_guest": 0, "pss_guest": 0}
    current = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and not parts[0].endswith(":"):
            current = parts[5] if len(parts) > 5 else ""
        elif parts and parts[0] in ("Rss:", "Pss:"):
            key = parts[0][:-1].lower()
            n = int(parts[1]) * 1024
            out[key] += n
            if current == str(mapped_file):
                out[f"{key}_guest"] += n
    return out
