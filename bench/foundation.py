"""Foundation benchmarks: cold boot vs clone, image snapshot, suspend, resume, clone RSS.

Every number is measured in this one run, side by side, on this machine.
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

from bench._common import machine_info, smaps_memory, summary, write_result
from ember.host.host import Host
from ember.host.kit import load_kit, test_rootfs

APP = "import time\nbuf = bytearray(32 << 20)\nprint('ready', flush=True)\nwhile True: time.sleep(1)\n"


async def run(runs: int, memory_mib: int) -> dict:
    kit = load_kit()
    rootfs = test_rootfs()
    with tempfile.TemporaryDirectory(prefix="ember-bench-") as tmp:
        host = Host(home=Path(tmp), kit=kit)
        try:
            boot_s = []
            for _ in range(runs):
                t0 = time.perf_counter()
                vm = await host.boot(rootfs, memory_mib=memory_mib)
                await vm.require_agent().ping()
                boot_s.append(time.perf_counter() - t0)
                await host.destroy(vm)

            vm = await host.boot(rootfs, memory_mib=memory_mib)
            agent = vm.require_agent()
            await agent.put_file("/root/app.py", APP.encode())
            await agent.app_start(["python3", "/root/app.py"])
            while not [line async for line in agent.app_logs() if line["line"] == "ready"]:
                await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            image = await host.snapshot_image(vm, Path(tmp) / "image")
            snapshot_s = time.perf_counter() - t0

            clone_s, suspend_s, suspend_bytes, resume_s = [], [], [], []
            rss_over, pss_over, rss_guest = [], [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                c = await host.clone(image)
                await c.require_agent().ping()
                clone_s.append(time.perf_counter() - t0)
                await asyncio.sleep(2)  # idle: let the guest settle before reading RSS
                assert c.pid is not None
                mem = smaps_memory(c.pid, image.memory)
                rss_over.append((mem["rss"] - mem["rss_guest"]) / 2**20)
                pss_over.append((mem["pss"] - mem["pss_guest"]) / 2**20)
                rss_guest.append(mem["rss_guest"] / 2**20)
                t0 = time.perf_counter()
                suspend_bytes.append(await host.suspend(c))
                suspend_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await host.resume(c)
                await c.require_agent().ping()
                resume_s.append(time.perf_counter() - t0)
                await host.destroy(c)
        finally:
            await host.close()

    return {
        "benchmark": "foundation",
        "machine": machine_info(host.accel.accel),
        "guest_memory_mib": memory_mib,
        "cold_boot_to_agent_s": summary(boot_s),
        "image_snapshot": {"seconds": round(snapshot_s, 4), "state_bytes": image.state_bytes,
                           "memory_file_bytes": image.memory_bytes, "disk_overlay_bytes": image.disk_bytes,
                           "vmm_save_seconds": round(image.save_seconds, 4)},
        "clone_to_agent_s": summary(clone_s),
        "suspend_s": summary(suspend_s),
        "suspend_bytes_median": int(statistics.median(suspend_bytes)),
        "resume_to_agent_s": summary(resume_s),
        "ratio_cold_boot_over_clone": round(statistics.median(boot_s) / statistics.median(clone_s), 1),
        "idle_clone_memory_mib": {"rss_above_guest_pages": summary(rss_over),
                                  "pss_above_guest_pages": summary(pss_over),
                                  "guest_pages_resident": summary(rss_guest)},
        "targets": {"ratio_cold_boot_over_clone": ">= 20", "rss_above_guest_pages_mib": "<= 40"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="repetitions per measurement (default 5)")
    parser.add_argument("--memory", type=int, default=512, help="guest memory in MiB (default 512)")
    parser.add_argument("--out", default="foundation", help="result name under bench/results/")
    args = parser.parse_args()
    result = asyncio.run(run(args.runs, args.memory))
    path = write_result(args.out, result)
    print(path)
    print(f"cold boot {result['cold_boot_to_agent_s']['median']} s, clone {result['clone_to_agent_s']['median']} s, "
          f"ratio {result['ratio_cold_boot_over_clone']}x, suspend {result['suspend_s']['median']} s, "
          f"resume {result['resume_to_agent_s']['median']} s")


if __name__ == "__main__":
    main()
