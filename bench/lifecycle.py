"""Lifecycle benchmarks through the API of one real ``ember serve``: image builds, suspend and resume.

- Builds: the code-interpreter and flask-hello examples (the latter pip-installs Flask, so the build VM needs
  egress: root), ``--builds`` times each, CreateMicrovmImage -> SUCCESSFUL seen (0.25 s polls). The phases come
  from the build log (``<home>/images/<account>/<name>/<version>/build.log``, lines ``HH:MM:SS [stream] text``,
  so each boundary is +-0.5 s): ``queue_fetch`` (API call -> "stage 0: FROM"), ``base`` (-> the first "line N:":
  the managed base and the build VM's boot), ``steps`` (-> "starting the app": the Dockerfile's steps, freezing
  the disk, booting the init VM), ``init_snapshot`` (-> "validating": app start, ready hook, image snapshot),
  ``validate`` (-> SUCCESSFUL seen: a clone and its validate hook). Snapshot sizes from GetMicrovmImageBuild.
- Suspend and resume, per run on a fresh code-interpreter VM (512 MiB, run/suspend/resume hooks on):
  SuspendMicrovm -> SUSPENDED and ResumeMicrovm -> RUNNING as seen with GetMicrovm every 50 ms, and the size of
  ``<home>/vms/<id>/suspend.state`` while SUSPENDED (apparent and allocated). The managed service's published
  2.5 s / 2.6 s are the reference.
"""

from __future__ import annotations

import argparse
import calendar
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as c
from tests.framework.server import client_for

EXAMPLES = {"code_interpreter": ("code-interpreter", c.HOOKS), "flask_hello": ("flask-hello", {"port": 8080})}
"""Result key -> (example, hooks): flask-hello has no hooks, so its readiness is a GET / answered."""
MARKERS = (("base", r"stage \d+.*: FROM "), ("steps", r"line \d+: "), ("init_snapshot", r"starting the app"),
           ("validate", r"validating"))
"""Each phase starts at the first log line matching its pattern; ``queue_fetch`` starts at the API call."""
SETTLE_S = 1.0
"""Pause on RUNNING before suspending and on SUSPENDED before resuming."""


def phases(log: str, start: float, end: float) -> dict[str, float]:
    """Seconds per build phase from the build log's ``HH:MM:SS`` (UTC) stamps; ``start``/``end`` are epochs."""
    day = calendar.timegm((*time.gmtime(start)[:3], 0, 0, 0))
    found: dict[str, float] = {}
    for line in log.splitlines():
        stamp, _, text = line.partition(" ")
        text = text.partition("] ")[2]
        for name, pattern in MARKERS:
            if name not in found and re.match(pattern, text):
                h, m, s = map(int, stamp.split(":"))
                at = day + h * 3600 + m * 60 + s + 0.5  # the middle of the logged second
                found[name] = at + 86400 if at < start - 2 else at  # the build ran past midnight UTC
    bounds = [("queue_fetch", start), *((name, found[name]) for name, _ in MARKERS if name in found), ("", end)]
    return {name: max(0.0, bounds[i + 1][1] - at) for i, (name, at) in enumerate(bounds[:-1])}


def build(serve: Any, example: str, hooks: dict[str, Any], name: str) -> dict[str, Any]:
    result = c.build_example(serve, example, name, hooks=hooks)
    account = serve.server.credentials.account_id
    log = (serve.server.settings.home / "images" / account / name / result["version"] / "build.log").read_text()
    sizes = result["build"].get("snapshotBuild") or {}
    return {"seconds": result["seconds"], "phases": phases(log, result["start"], result["end"]),
            "sizes": {"memory_snapshot_bytes": sizes.get("memorySnapshotSizeInBytes", 0),
                      "disk_snapshot_bytes": sizes.get("diskSnapshotSizeInBytes", 0),
                      "code_install_bytes": sizes.get("codeInstallSizeInBytes", 0)}}


def suspend_resume(serve: Any, image: str) -> dict[str, float]:
    client = client_for(serve)
    vm, _ = c.run_vm(client, image)
    vm_id = vm["microvmId"]
    time.sleep(SETTLE_S)
    t0 = time.monotonic()
    client.suspend_microvm(microvmIdentifier=vm_id)
    c.wait_state(client, vm_id, "SUSPENDED", leaving=("RUNNING", "SUSPENDING"))
    suspend_s = time.monotonic() - t0
    state = os.stat(serve.server.settings.home / "vms" / vm_id / "suspend.state")
    time.sleep(SETTLE_S)
    t0 = time.monotonic()
    client.resume_microvm(microvmIdentifier=vm_id)
    c.wait_state(client, vm_id, "RUNNING", leaving=("SUSPENDED",))
    resume_s = time.monotonic() - t0
    client.terminate_microvm(microvmIdentifier=vm_id)
    c.wait_state(client, vm_id, "TERMINATED", leaving=("RUNNING", "TERMINATING"), poll_s=0.2)
    return {"suspend_s": suspend_s, "resume_s": resume_s, "suspend_state_mib": state.st_size / 2**20,
            "suspend_state_allocated_mib": state.st_blocks * 512 / 2**20}


def run(runs: int, builds: int) -> dict[str, Any]:
    s: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="ember-bench-life-") as tmp:
        serve = c.start_server(Path(tmp) / "home")
        try:
            accel = serve.server.host.accel.accel
            for i in range(builds):
                for key, (example, hooks) in EXAMPLES.items() if i % 2 == 0 else reversed(EXAMPLES.items()):
                    b = build(serve, example, hooks, f"{example}-{i}")
                    s[f"build.{key}.total_s"].append(b["seconds"])
                    for phase, seconds in b["phases"].items():
                        s[f"build.{key}.phases_s.{phase}"].append(seconds)
                    for what, size in b["sizes"].items():
                        s[f"build.{key}.{what}"].append(size)
            for _ in range(runs):
                for key, value in suspend_resume(serve, "code-interpreter-0").items():
                    s[key].append(value)
        finally:
            serve.stop()
    return {"benchmark": "lifecycle", "machine": c.machine_info(accel), "guest_memory_mib": 512, **c.nest_summaries(s),
            "managed_service": {"suspend_s": 2.5, "resume_s": 2.6, "build_s": "123-145"},
            "note": "build phase boundaries come from HH:MM:SS log stamps: each is +-0.5 s"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="suspend/resume repetitions (default 5)")
    parser.add_argument("--builds", type=int, help="builds of each example (default: --runs)")
    parser.add_argument("--out", default="lifecycle", help="result name under bench/results/")
    args = parser.parse_args()
    r = run(args.runs, args.builds or args.runs)
    print(c.write_result(args.out, r))
    b = r["build"]
    print(f"suspend {r['suspend_s']['median']:.2f} s, resume {r['resume_s']['median']:.2f} s (managed 2.5 / 2.6 s), "
          f"suspend.state {r['suspend_state_mib']['median']:.0f} MiB; build code-interpreter "
          f"{b['code_interpreter']['total_s']['median']:.0f} s, "
          f"flask-hello {b['flask_hello']['total_s']['median']:.0f} s")


if __name__ == "__main__":
    main()
