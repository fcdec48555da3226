"""What VMM confinement costs: clone, suspend and resume with the jail on and off, alternated in one run.

"Off" replaces the host's confinement with the one a non-root Ember gets (rlimits only), so both
sides run the same code but for the namespaces, uid change and cgroups.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine_info, summary, write_result
from ember.host.host import Host
from ember.host.kit import load_kit, test_rootfs
from ember.vmm import jail

OFF = jail.Confinement(False, False, None, False, disabled_by="benchmark")


async def run(runs: int, memory_mib: int) -> dict:
    kit = load_kit()
    full = jail.confinement()
    if not full.full:
        raise SystemExit(f"this benchmark needs full confinement to compare against: {full.describe()}")
    samples: dict[str, dict[str, list[float]]] = {m: {"clone": [], "suspend": [], "resume": []} for m in ("on", "off")}
    with tempfile.TemporaryDirectory(prefix="ember-bench-") as tmp:
        host = Host(home=Path(tmp), kit=kit)
        try:
            vm = await host.boot(test_rootfs(), memory_mib=memory_mib)
            image = await host.snapshot_image(vm, Path(tmp) / "image")
            for i in range(runs * 2):
                mode = ("on", "off")[i % 2]
                jail.confinement = (lambda: full) if mode == "on" else (lambda: OFF)  # type: ignore[assignment]
                t0 = time.perf_counter()
                c = await host.clone(image)
                await c.require_agent().ping()
                samples[mode]["clone"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await host.suspend(c)
                samples[mode]["suspend"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await host.resume(c)
                await c.require_agent().ping()
                samples[mode]["resume"].append(time.perf_counter() - t0)
                await host.destroy(c)
        finally:
            await host.close()
    med = {m: {k: statistics.median(v) for k, v in s.items()} for m, s in samples.items()}
    return {
        "benchmark": "jail",
        "machine": machine_info(host.accel.accel),
        "guest_memory_mib": memory_mib,
        "confinement": full.describe(),
        "jailed": {k: summary(v) for k, v in samples["on"].items()},
        "unjailed": {k: summary(v) for k, v in samples["off"].items()},
        "ratio_jailed_over_unjailed": {k: round(med["on"][k] / med["off"][k], 2) for k in med["on"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="repetitions per side (default 5)")
    parser.add_argument("--memory", type=int, default=512, help="guest memory in MiB (default 512)")
    parser.add_argument("--out", default="jail", help="result name under bench/results/")
    args = parser.parse_args()
    result = asyncio.run(run(args.runs, args.memory))
    print(write_result(args.out, result))
    print(f"jailed/unjailed medians: {result['ratio_jailed_over_unjailed']}")


if __name__ == "__main__":
    main()
