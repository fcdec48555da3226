"""Image benchmarks: build of the code-interpreter example, then launch of VMs from it to a served request.

"Launch" = restore from the image snapshot + the run hook + the first HTTP request answered by the app,
the data-plane analogue of RunMicrovm → serving traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine_info, summary, write_result
from ember.host.guest_http import call_hook, guest_request
from ember.host.host import Host
from ember.host.kit import load_kit
from ember.images.builder import BuildRequest, ImageBuilder, Readiness
from ember.images.dockerfile import plan_dockerfile

EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "examples" / "code-interpreter"


async def run(runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="ember-bench-") as tmp:
        host = Host(home=Path(tmp), kit=load_kit())
        try:
            plan = plan_dockerfile((EXAMPLE / "Dockerfile").read_text())
            t0 = time.perf_counter()
            result = await ImageBuilder(host, lambda s, line: None).build(BuildRequest(
                context=EXAMPLE, plan=plan, out_dir=Path(tmp) / "v1", egress=False,
                readiness=Readiness(port=8080, ready_hook=True, validate_hook=True)))
            build_s = time.perf_counter() - t0
            launch_s, first_request_s, warm_s = [], [], []
            for i in range(runs):
                t0 = time.perf_counter()
                vm = await host.clone(result.snapshot)
                agent = vm.require_agent()
                await call_hook(agent, 8080, "run", body=json.dumps({"microvmId": vm.id, "runHookPayload": str(i)})
                                .encode())
                t1 = time.perf_counter()
                await guest_request(agent, 8080, "POST", "/execute", body=b'{"code": "x = 1"}')
                t2 = time.perf_counter()
                launch_s.append(t1 - t0)
                first_request_s.append(t2 - t0)
                for _ in range(5):
                    t3 = time.perf_counter()
                    await guest_request(agent, 8080, "POST", "/execute", body=b'{"code": "x += 1"}')
                    warm_s.append(time.perf_counter() - t3)
                await host.destroy(vm)
        finally:
            await host.close()
    return {
        "benchmark": "images",
        "machine": machine_info(host.accel.accel),
        "build_code_interpreter_s": round(build_s, 2),
        "snapshot": {"memory_bytes": result.memory_bytes, "disk_bytes": result.disk_bytes,
                     "code_bytes": result.code_bytes},
        "launch_to_run_hook_done_s": summary(launch_s),
        "launch_to_first_response_s": summary(first_request_s),
        "warm_request_s": summary(warm_s),
        "ratio_build_over_launch": round(build_s / statistics.median(first_request_s), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="images")
    args = parser.parse_args()
    result = asyncio.run(run(args.runs))
    print(write_result(args.out, result))
    print(f"build {result['build_code_interpreter_s']} s, launch to first response "
          f"{result['launch_to_first_response_s']['median']} s, warm request {result['warm_request_s']['median']} s")


if __name__ == "__main__":
    main()
