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


# -- helpers for the benchmarks that drive a real `ember serve` through its API (gateway, api, lifecycle) --------
HOOKS = {"port": 8080, "microvmHooks": {"run": "ENABLED", "resume": "ENABLED", "suspend": "ENABLED"},
         "microvmImageHooks": {"ready": "ENABLED", "validate": "ENABLED"}}
"""The code-interpreter example's hooks, all on (as the e2e tests configure it)."""
NEVER_IDLE = {"maxIdleDurationSeconds": 3600, "suspendedDurationSeconds": 0, "autoResumeEnabled": True}
"""An idle policy that keeps a VM running for the whole benchmark but lets the gateway auto-resume it."""


def percentiles(values: list[float]) -> dict[str, Any]:
    """p50/p99/mean of one run's samples (nearest-rank p99)."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return {"p50": round(statistics.median(ordered), 3), "p99": round(p99, 3),
            "mean": round(statistics.fmean(ordered), 3), "n": len(ordered)}


def start_server(home: Path, **settings: Any) -> Any:
    """A real EmberServer (API + TLS gateway + VMs) on its own loop thread (``tests.framework.server``)."""
    from ember.images.bases import ensure_base
    from ember.server import ServeSettings
    from tests.framework.server import ServerThread, free_port

    ensure_base("python-3.11")
    home.mkdir(parents=True, exist_ok=True)
    serve = ServerThread(ServeSettings(home=home, api_port=free_port(), gateway_port=free_port(), **settings))
    serve.start()
    return serve


def build_example(serve: Any, example: str, name: str, *, memory_mib: int = 512, hooks: dict[str, Any] | None = None,
                  timeout_s: float = 1800.0) -> dict[str, Any]:
    """CreateMicrovmImage from ``/work/shared/examples/<example>`` (``hooks`` default: HOOKS); waits for the build.

    Returns the version, build id, wall seconds (API call to SUCCESSFUL seen, 0.25 s polls), epoch start/end and
    GetMicrovmImageBuild's answer. Raises if the build failed.
    """
    from ember.images.artifact import make_zip
    from tests.framework.paths import EXAMPLES
    from tests.framework.server import REGION, artifact_uri, client_for, wait_for

    client = client_for(serve)
    home = serve.server.settings.home
    artifact = make_zip(EXAMPLES / example, home / f"{name}.zip")
    start, t0 = time.time(), time.monotonic()
    created = client.create_microvm_image(
        name=name, baseImageArn=f"arn:aws:lambda:{REGION}:aws:microvm-image:python-3.11",
        buildRoleArn="arn:aws:iam::123456789012:role/build", codeArtifact={"uri": artifact_uri(serve, artifact)},
        resources=[{"minimumMemoryInMiB": memory_mib}], hooks=hooks or HOOKS)
    version = created["imageVersion"]
    got, _ = wait_for("build", lambda: client.get_microvm_image_version(imageIdentifier=name, imageVersion=version),
                      lambda v: v["state"] in ("SUCCESSFUL", "FAILED"), timeout_s, 0.25)
    seconds = time.monotonic() - t0
    build_id = client.list_microvm_image_builds(imageIdentifier=name, imageVersion=version)["items"][0]["buildId"]
    if got["state"] != "SUCCESSFUL":
        raise RuntimeError(f"build of {example} failed: {got.get('stateReason')}")
    build = client.get_microvm_image_build(imageIdentifier=name, imageVersion=version, buildId=build_id)
    build.pop("ResponseMetadata", None)
    return {"version": version, "build_id": build_id, "seconds": seconds, "start": start, "end": start + seconds,
            "build": build}


def wait_state(client: Any, vm_id: str, want: str, *, leaving: tuple[str, ...], timeout_s: float = 300.0,
               poll_s: float = 0.05) -> float:
    """Seconds until GetMicrovm shows ``want``, polling every ``poll_s``; raises if it settles elsewhere."""
    t0 = time.monotonic()
    while True:
        got = client.get_microvm(microvmIdentifier=vm_id)
        if got["state"] == want:
            return time.monotonic() - t0
        if got["state"] not in leaving or time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"{vm_id}: {got['state']} ({got.get('stateReason')}), waiting for {want}")
        time.sleep(poll_s)


def run_vm(client: Any, image: str, **kwargs: Any) -> tuple[dict[str, Any], float]:
    """RunMicrovm and wait for RUNNING; the VM's description and the seconds it took."""
    t0 = time.monotonic()
    vm = client.run_microvm(imageIdentifier=image, **kwargs)
    wait_state(client, vm["microvmId"], "RUNNING", leaving=("PENDING",))
    return client.get_microvm(microvmIdentifier=vm["microvmId"]), time.monotonic() - t0


def nest_summaries(samples: dict[str, list[float]]) -> dict[str, Any]:
    """``{"a.b": [values]}`` -> ``{"a": {"b": summary(values)}}`` (dots make the nesting)."""
    out: dict[str, Any] = {}
    for key, values in samples.items():
        *path, leaf = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = summary(values)
    return out


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), plus its direct children's if asked."""
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())] if children else [pid]
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
