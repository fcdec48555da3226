"""Gateway benchmarks: added latency, throughput against nginx, and auto-resume, on one real ``ember serve``.

One EmberServer (API + TLS gateway + VMs, ``tests.framework.server.ServerThread``) builds the code-interpreter
example through the API and runs one VM from it (512 MiB, hooks on). Per run:

- latency: ``GET /state`` through the gateway (httpx keep-alive client trusting ``<home>/tls/ca.pem``, in a
  process of its own, timed there) interleaved with the same GET over a raw agent stream from inside the server
  process (``guest_request``, timed on the server's loop); p50/p99 of each, ``added_latency_p50_ms`` = the gap;
- throughput: ``wrk -c32`` for ``--seconds`` against the gateway, against nginx proxying plain HTTP to a bridge in
  the server process that splices each connection to ``agent.open_stream(8080)`` (the per-request agent stream
  the gateway opens too), and against that nginx terminating TLS with the gateway's certificate; with the CPU
  that the Ember process, nginx and QEMU spent per answered request (/proc);
- auto-resume: first request to a SUSPENDED VM, held by the gateway while it resumes the VM, vs ResumeMicrovm ->
  RUNNING (GetMicrovm every 50 ms) -> first request; each on a fresh TLS connection, the order alternating.

The gateway's per-MicroVM rate limit (100 requests/s) is turned off: it would answer 429s to the load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as c
from ember.host.agent_client import AgentClient
from ember.host.guest_http import guest_request
from tests.framework.server import client_for, free_port

NGINX_CONF = """user root; worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  upstream bridge {{ server 127.0.0.1:{bridge}; }}
  server {{ listen 127.0.0.1:{plain}; location / {{ proxy_pass http://bridge; }} }}
  server {{ listen 127.0.0.1:{tls} ssl; ssl_certificate {tls_dir}/server.pem;
    ssl_certificate_key {tls_dir}/server-key.pem; location / {{ proxy_pass http://bridge; }} }} }}
"""
CLIENT = """import ssl, sys, time, httpx
url, ca, name, value = sys.argv[1:5]
with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=30) as http:
    for _ in sys.stdin:
        t0 = time.perf_counter()
        r = http.get(url, headers={name: value})
        print((time.perf_counter() - t0) * 1000 if r.status_code == 200 else -r.status_code, flush=True)
"""
"""The latency client: a process of its own, so it never waits for the server thread's GIL."""
SETTLE_S = 2.0
"""Pause after SUSPENDED is seen before timing a first request (the state file's writeback, the log pump)."""


class Bench:
    def __init__(self, serve: Any, vm: dict[str, Any], token: dict[str, str]) -> None:
        self.serve, self.vm_id, self.token = serve, vm["microvmId"], token
        self.url = f"https://{vm['endpoint']}/state"
        self.ca = str(serve.server.settings.home / "tls" / "ca.pem")
        self.nginx_pid = 0

    def on_loop(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.serve.loop).result(timeout)

    def agent(self) -> AgentClient:
        return self.serve.server.microvms._live[self.vm_id].vm.require_agent()

    def latency(self, n: int) -> dict[str, dict[str, float]]:
        async def raw(agent: AgentClient) -> float:
            t0 = time.perf_counter()
            response = await guest_request(agent, 8080, "GET", "/state")
            assert response.status == 200, response
            return (time.perf_counter() - t0) * 1000

        [(name, value)] = self.token.items()
        client = subprocess.Popen([sys.executable, "-c", CLIENT, self.url, self.ca, name, value],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        stdin, stdout = client.stdin, client.stdout
        assert stdin is not None and stdout is not None

        def gateway() -> float:
            stdin.write("\n")
            stdin.flush()
            if (ms := float(stdout.readline())) < 0:
                raise RuntimeError(f"the gateway answered {-ms:.0f}")
            return ms

        samples: dict[str, list[float]] = {"gateway": [], "raw": []}
        agent = self.agent()
        gateway()  # TLS handshake and connection set up outside the samples
        for i in range(n):
            for arm in ("gateway", "raw") if i % 2 else ("raw", "gateway"):
                samples[arm].append(gateway() if arm == "gateway" else self.on_loop(raw(agent)))
        stdin.close()
        client.wait(30)
        return {arm: c.percentiles(values) for arm, values in samples.items()}

    async def bridge(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One nginx upstream connection spliced to a fresh agent stream to the app's port."""
        try:
            stream = await self.agent().open_stream(8080)
        except Exception:
            writer.close()
            return

        async def up() -> None:
            while data := await reader.read(65536):
                await stream.write(data)
            await stream.write_eof()

        async def down() -> None:
            while data := await stream.read():
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(up(), down(), return_exceptions=True)
        await stream.close()
        writer.close()

    def load(self, url: str, headers: dict[str, str], seconds: int) -> dict[str, Any]:
        """wrk -c32 against ``url``: 2xx answers per second, failures, CPU ms per answered request."""
        vm = self.serve.server.microvms._live[self.vm_id].vm  # QEMU's pid changes with every suspend and resume
        pids = {"ember": os.getpid(), "nginx": self.nginx_pid, "qemu": vm.pid}
        before = {name: c.cpu_seconds(pid, children=name == "nginx") for name, pid in pids.items()}
        cmd = ["wrk", "-t1", "-c32", "--timeout", "60s", f"-d{seconds}s", url]
        cmd += [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        spent = {name: c.cpu_seconds(pid, children=name == "nginx") - before[name] for name, pid in pids.items()}
        done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
        assert done, out
        bad = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
        ok = max(int(done[1]) - bad, 1)
        errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
        return {"rps": ok / (float(done[2]) * (0.001 if done[3] == "ms" else 1)), "failures": bad + errors,
                "cpu": {name: s * 1000 / ok for name, s in spent.items()}}

    def first_request(self, auto: bool) -> tuple[float, float]:
        """Seconds from SUSPENDED to the first 200, and (explicit only) to RUNNING seen."""
        client = client_for(self.serve)
        client.suspend_microvm(microvmIdentifier=self.vm_id)
        c.wait_state(client, self.vm_id, "SUSPENDED", leaving=("RUNNING", "SUSPENDING"))
        time.sleep(SETTLE_S)
        t0 = time.perf_counter()
        running_s = 0.0
        if not auto:
            client.resume_microvm(microvmIdentifier=self.vm_id)
            c.wait_state(client, self.vm_id, "RUNNING", leaving=("SUSPENDED",))
            running_s = time.perf_counter() - t0
        with httpx.Client(verify=ssl.create_default_context(cafile=self.ca), timeout=120) as http:
            response = http.get(self.url, headers=self.token)
        if response.status_code != 200:
            raise RuntimeError(f"the gateway answered {response.status_code}: {response.text}")
        return time.perf_counter() - t0, running_s


def start_nginx(tmp: Path, tls_dir: Path, bridge: int) -> tuple[subprocess.Popen[bytes], int, int]:
    if shutil.which("nginx") is None or shutil.which("wrk") is None:
        raise SystemExit("needs nginx and wrk: apt-get install nginx wrk")
    plain, tls = free_port(), free_port()
    for sub in ("body", "proxy", "fcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(parents=True)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, bridge=bridge, plain=plain, tls=tls, tls_dir=tls_dir))
    proc = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(conf)])
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", plain), timeout=1):
            return proc, plain, tls
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nginx did not start: {(tmp / 'error.log').read_text()}")
        time.sleep(0.1)


def run(runs: int, requests: int, seconds: int) -> dict[str, Any]:
    s: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    with tempfile.TemporaryDirectory(prefix="ember-bench-gw-") as tmp_dir:
        tmp = Path(tmp_dir)
        serve = c.start_server(tmp / "home")
        nginx: subprocess.Popen[bytes] | None = None
        try:
            serve.server.gateway._limiter = None  # see the module docstring
            accel = serve.server.host.accel.accel
            build = c.build_example(serve, "code-interpreter", "ci")
            client = client_for(serve)
            vm, _ = c.run_vm(client, "ci", idlePolicy=c.NEVER_IDLE)
            token = client.create_microvm_auth_token(microvmIdentifier=vm["microvmId"], expirationInMinutes=60,
                                                     allowedPorts=[{"port": 8080}])["authToken"]
            b = Bench(serve, vm, token)
            bridge = b.on_loop(asyncio.start_server(b.bridge, "127.0.0.1", 0))
            nginx, plain, tls = start_nginx(tmp / "nginx", tmp / "home" / "tls", bridge.sockets[0].getsockname()[1])
            b.nginx_pid = nginx.pid
            arms = {"gateway": (b.url, token), "nginx": (f"http://127.0.0.1:{plain}/state", {}),
                    "nginx_tls": (f"https://127.0.0.1:{tls}/state", {})}
            for url, headers in arms.values():
                b.load(url, headers, 2)  # warm every path up once
            for i in range(runs):
                lat = b.latency(requests)
                for arm, q in ((arm, q) for arm in lat for q in ("p50", "p99")):
                    s[f"latency_ms.{arm}_{q}"].append(lat[arm][q])
                s["added_latency_p50_ms"].append(lat["gateway"]["p50"] - lat["raw"]["p50"])
                for arm in list(arms) if i % 2 == 0 else reversed(arms):
                    r = b.load(*arms[arm], seconds)
                    s[f"{arm}_rps"].append(r["rps"])
                    failures[arm] += r["failures"]
                    for name, ms in r["cpu"].items():
                        s[f"cpu_ms_per_request.{arm}.{name}"].append(ms)
                for auto in (True, False) if i % 2 == 0 else (False, True):
                    first, running = b.first_request(auto)
                    s[f"first_request_s.{'auto_resume' if auto else 'explicit_resume'}"].append(first)
                    if not auto:
                        s["first_request_s.explicit_resume_running_seen"].append(running)
            bridge.close()
        finally:
            if nginx is not None:
                nginx.terminate()
                nginx.wait(10)
            serve.stop()

    def ratio(a: str, b: str) -> float:
        return round(statistics.median(s[a]) / statistics.median(s[b]), 2)

    return {
        "benchmark": "gateway", "machine": c.machine_info(accel),
        "build_code_interpreter_s": round(build["seconds"], 1), "requests_per_latency_run": requests,
        "wrk": f"1 thread, 32 connections, {seconds} s per arm, 60 s timeout", "failed_requests": dict(failures),
        "gateway_rate_limit": "off for this benchmark (default 100 requests/s per MicroVM, burst 200)",
        **c.nest_summaries(s),
        "ratio": ratio("gateway_rps", "nginx_rps"), "ratio_vs_nginx_tls": ratio("gateway_rps", "nginx_tls_rps"),
        "ratio_auto_over_explicit_resume": ratio("first_request_s.auto_resume", "first_request_s.explicit_resume"),
        "managed_service_auto_resume_first_request_s": 0.7,
        "targets": {"added_latency_p50_ms": "<= 1", "ratio": ">= 0.5", "ratio_auto_over_explicit_resume": "<= 2"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="repetitions per measurement (default 5)")
    parser.add_argument("--requests", type=int, default=200, help="GETs per path per latency run (default 200)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per throughput arm (default 10)")
    parser.add_argument("--out", default="gateway", help="result name under bench/results/")
    args = parser.parse_args()
    r = run(args.runs, args.requests, args.seconds)
    print(c.write_result(args.out, r))
    first = r["first_request_s"]
    print(f"added latency p50 {r['added_latency_p50_ms']['median']:.1f} ms; "
          f"rps gateway {r['gateway_rps']['median']:.1f} nginx {r['nginx_rps']['median']:.1f} (ratio {r['ratio']}); "
          f"first request auto-resume {first['auto_resume']['median']:.2f} s "
          f"vs explicit {first['explicit_resume']['median']:.2f} s (ratio {r['ratio_auto_over_explicit_resume']})")


if __name__ == "__main__":
    main()
