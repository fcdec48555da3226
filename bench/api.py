"""Control-plane API benchmarks through boto3 against one real ``ember serve``.

One EmberServer (``tests.framework.server.ServerThread``) builds the code-interpreter example through the API.
Three VMs are launched one after the other (``single_launch_s``: RunMicrovm -> RUNNING seen, GetMicrovm every
50 ms). Then, per run:

- GetMicrovm and ListMicrovms, ``--calls`` of each, interleaved, sequential, timed around the boto3 call in this
  process (signing and parsing included): p50/p99 per run;

and after all of those (ListMicrovms lists TERMINATED VMs too, so the bursts come last), per run:

- ``--launches`` concurrent RunMicrovm calls (one thread and boto3 client each, released together); one poller
  lists the VMs every 100 ms and notes when each is first RUNNING. Reported: wall time from the release to all
  RUNNING, per-VM RunMicrovm -> RUNNING p50/p99, and the RunMicrovm call's own p50/p99. The VMs are then
  terminated. The RunMicrovm quota is raised for this (default 5/s, burst 10, as the managed service publishes),
  else the burst would measure the throttle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as c
from ember.api.context import Quotas
from tests.framework.server import client_for

EXISTING_VMS = 3


def get_and_list(client: Any, vm_ids: list[str], calls: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {"get_microvm": [], "list_microvms": []}
    for i in range(calls):
        for op in ("get_microvm", "list_microvms") if i % 2 else ("list_microvms", "get_microvm"):
            t0 = time.perf_counter()
            if op == "get_microvm":
                client.get_microvm(microvmIdentifier=vm_ids[i % len(vm_ids)])
            else:
                assert len(client.list_microvms()["items"]) >= len(vm_ids)
            samples[op].append((time.perf_counter() - t0) * 1000)
    return {op: c.percentiles(values) for op, values in samples.items()}


def launch_burst(serve: Any, n: int) -> dict[str, Any]:
    clients = [client_for(serve) for _ in range(n)]  # made before the clock starts (each takes ~0.1 s)
    go = threading.Barrier(n + 1)
    called: dict[str, tuple[float, float]] = {}  # id -> (RunMicrovm sent, answered), perf_counter seconds

    def launch(client: Any) -> str:
        go.wait()
        t0 = time.perf_counter()
        vm_id = client.run_microvm(imageIdentifier="ci")["microvmId"]
        called[vm_id] = (t0, time.perf_counter())
        return str(vm_id)

    poller = clients[0]
    running: dict[str, float] = {}
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(launch, client) for client in clients]
        go.wait()
        start = time.perf_counter()
        while len(running) < n:
            for page in poller.get_paginator("list_microvms").paginate():
                for item in page["items"]:
                    if item["microvmId"] in called and item["microvmId"] not in running:
                        if item["state"] == "TERMINATED":
                            raise RuntimeError(f"{item['microvmId']} terminated while launching")
                        if item["state"] == "RUNNING":
                            running[item["microvmId"]] = time.perf_counter()
            for failed in (f.exception() for f in futures if f.done()):
                if failed is not None:
                    raise failed
            if time.perf_counter() - start > 900:
                raise RuntimeError(f"only {len(running)} of {n} RUNNING after 900 s")
            time.sleep(0.1)
        ids = [f.result() for f in futures]
    wall = max(running.values()) - start
    for vm_id in ids:
        poller.terminate_microvm(microvmIdentifier=vm_id)
    for vm_id in ids:
        c.wait_state(poller, vm_id, "TERMINATED", leaving=("RUNNING", "TERMINATING"), poll_s=0.2)
    return {"wall_s": wall, "to_running": c.percentiles([running[i] - called[i][0] for i in ids]),
            "call_ms": c.percentiles([(called[i][1] - called[i][0]) * 1000 for i in ids])}


def run(runs: int, calls: int, launches: int) -> dict[str, Any]:
    s: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="ember-bench-api-") as tmp:
        serve = c.start_server(Path(tmp) / "home", quotas=Quotas(run_per_second=1000.0, run_burst=1000))
        try:
            accel = serve.server.host.accel.accel
            c.build_example(serve, "code-interpreter", "ci")
            client = client_for(serve)
            vm_ids = []
            for _ in range(EXISTING_VMS):
                vm, seconds = c.run_vm(client, "ci")
                vm_ids.append(vm["microvmId"])
                s["single_launch_s"].append(seconds)
            get_and_list(client, vm_ids, 20)  # warm up: connections, boto3's caches
            for _ in range(runs):
                for op, p in get_and_list(client, vm_ids, calls).items():
                    s[f"{op}_ms.p50"].append(p["p50"])
                    s[f"{op}_ms.p99"].append(p["p99"])
            for _ in range(runs):
                burst = launch_burst(serve, launches)
                s["concurrent_launch.wall_to_all_running_s"].append(burst["wall_s"])
                for q in ("p50", "p99"):
                    s[f"concurrent_launch.per_vm_to_running_s_{q}"].append(burst["to_running"][q])
                    s[f"concurrent_launch.run_microvm_call_ms_{q}"].append(burst["call_ms"][q])
        finally:
            serve.stop()
    single = statistics.median(s["single_launch_s"])
    walls = s["concurrent_launch.wall_to_all_running_s"]
    return {
        "benchmark": "api", "machine": c.machine_info(accel), "existing_vms": EXISTING_VMS,
        "calls_per_run": calls, "concurrent_launches": launches,
        "run_microvm_quota": "raised for this benchmark (default 5/s, burst 10)",
        **c.nest_summaries(s),
        "concurrent_wall_over_single_launch": round(statistics.median(walls) / single, 1),
        "managed_service_run_to_serving_p50_s": 3.54,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="repetitions per measurement (default 5)")
    parser.add_argument("--calls", type=int, default=200, help="GetMicrovm and ListMicrovms calls per run")
    parser.add_argument("--launches", type=int, default=20, help="concurrent RunMicrovm calls per run")
    parser.add_argument("--out", default="api", help="result name under bench/results/")
    args = parser.parse_args()
    r = run(args.runs, args.calls, args.launches)
    print(c.write_result(args.out, r))
    burst = r["concurrent_launch"]
    print(f"GetMicrovm p50 {r['get_microvm_ms']['p50']['median']:.1f} ms p99 {r['get_microvm_ms']['p99']['median']:.1f}"
          f" ms; ListMicrovms p50 {r['list_microvms_ms']['p50']['median']:.1f} ms p99 "
          f"{r['list_microvms_ms']['p99']['median']:.1f} ms; {args.launches} concurrent launches: all RUNNING in "
          f"{burst['wall_to_all_running_s']['median']:.1f} s (per VM p50 "
          f"{burst['per_vm_to_running_s_p50']['median']:.1f} s, p99 {burst['per_vm_to_running_s_p99']['median']:.1f} s)"
          f"; single launch {r['single_launch_s']['median']:.1f} s")


if __name__ == "__main__":
    main()
