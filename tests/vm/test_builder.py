"""Build real images from Dockerfiles in VMs: steps, readiness, snapshot, validate, failures."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from ember.host.guest_http import guest_request
from ember.host.host import Host
from ember.images.builder import BuildFailed, BuildRequest, ImageBuilder, Readiness
from ember.images.dockerfile import plan_dockerfile
from tests.framework.paths import EXAMPLES

pytestmark = pytest.mark.vm



def _pid_of(pattern: str) -> str:
    """Shell for the pid of the process whose command line holds ``pattern`` (the bases have no pgrep)."""
    return ("$(for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q " + pattern
            + " && echo ${p#/proc/} && break; done)")


def _request(context: Path, out: Path, **kw) -> BuildRequest:  # type: ignore[no-untyped-def]
    plan = plan_dockerfile((context / "Dockerfile").read_text())
    return BuildRequest(context=context, plan=plan, out_dir=out, egress=False, timeout_s=600, **kw)


async def test_code_interpreter_builds_with_hooks_and_serves_from_a_clone(host: Host, tmp_path: Path) -> None:
    lines: list[tuple[str, str]] = []
    builder = ImageBuilder(host, lambda stream, line: lines.append((stream, line)))
    result = await builder.build(_request(
        EXAMPLES / "code-interpreter", tmp_path / "v1",
        readiness=Readiness(port=8080, ready_hook=True, ready_timeout_s=120, validate_hook=True)))
    assert result.config.workdir == "/srv"
    assert result.memory_bytes > 0 and result.disk_bytes > 0 and result.code_bytes > 0
    assert any("ready" in line for _, line in lines)
    vm = await host.clone(result.snapshot)
    try:
        agent = vm.require_agent()
        ran = await guest_request(agent, 8080, "POST", "/execute", body=json.dumps({"code": "x = 6 * 7"}).encode())
        assert ran.status == 200
        got = await guest_request(agent, 8080, "POST", "/execute", body=json.dumps({"code": "print(x)"}).encode())
        assert json.loads(got.body)["stdout"] == "42\n"
        state = json.loads((await guest_request(agent, 8080, "GET", "/state")).body)
        assert state["hooks"]["ready"] >= 2  # the first answer was 503: the builder polled again
        # ENV from the Dockerfile reached the app; the directory a RUN step made is on the disk.
        probe = await agent.exec(["sh", "-c", f"test -d /var/lib/session && cat /proc/{_pid_of('server.py')}/environ"])
        assert probe.exit_code == 0 and b"SESSION_DIR=/var/lib/session" in probe.stdout
    finally:
        await host.destroy(vm)


async def test_failing_step_names_its_line_exit_code_and_output(host: Host, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        'FROM python:3.11-slim\nRUN echo preparing\nRUN echo boom >&2; exit 3\nCMD ["true"]\n')
    with pytest.raises(BuildFailed) as err:
        await ImageBuilder(host, lambda s, line: None).build(_request(ctx, tmp_path / "out"))
    message = str(err.value)
    assert message.startswith("line 3: RUN failed:") and "exit code 3" in message and "boom" in message
    assert host.vms == {} or all(vm.state != "running" for vm in host.vms.values())


async def test_app_that_never_gets_ready_fails_the_build_in_time(host: Host, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM python:3.11-slim\nCMD ["sleep", "1000"]\n')
    with pytest.raises(BuildFailed, match=r"not ready within 5 s \(port 8080"):
        await ImageBuilder(host, lambda s, line: None).build(
            _request(ctx, tmp_path / "out", readiness=Readiness(port=8080, ready_timeout_s=5)))


async def test_copy_chown_workdir_user_and_multi_stage(host: Host, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "app" / "run.sh").write_text("#!/bin/sh\nexec python3 -m http.server 8080\n")
    (ctx / "app" / "run.sh").chmod(0o755)
    (ctx / "Dockerfile").write_text(
        "ARG GREETING=default\n"
        "FROM debian:bookworm AS gen\n"
        "ARG GREETING\n"
        "RUN mkdir -p /out && echo $GREETING > /out/data.txt\n"
        "FROM python:3.11-slim\n"
        "RUN useradd -m -u 1234 app\n"
        "WORKDIR /home/app/site\n"
        "COPY --chown=app:app app/ /opt/app/\n"
        "COPY --from=gen /out/data.txt ./data.txt\n"
        "USER app\n"
        'CMD ["/opt/app/run.sh"]\n')
    plan = plan_dockerfile((ctx / "Dockerfile").read_text(), build_args={"GREETING": "generated"})
    result = await ImageBuilder(host, lambda s, line: None).build(
        BuildRequest(context=ctx, plan=plan, out_dir=tmp_path / "out", egress=False, timeout_s=600))
    vm = await host.clone(result.snapshot)
    try:
        agent = vm.require_agent()
        served = await guest_request(agent, 8080, "GET", "/data.txt")
        assert served.status == 200 and served.body == b"generated\n"
        owner = await agent.exec(["stat", "-c", "%u:%g %a", "/opt/app/run.sh"])
        assert owner.stdout.decode().strip() == "1234:1234 755"
        uid = await agent.exec(["sh", "-c", f"stat -c %u /proc/{_pid_of('http.server')}"])
        assert uid.stdout.decode().strip() == "1234"
    finally:
        await host.destroy(vm)
        shutil.rmtree(tmp_path / "out", ignore_errors=True)


async def test_networked_build_installs_from_pypi_with_the_hosts_trusted_cas(host: Host, tmp_path: Path) -> None:
    """flask-hello runs `pip install` in its build: egress works and the host's extra CAs are trusted."""
    lines: list[str] = []
    plan = plan_dockerfile((EXAMPLES / "flask-hello" / "Dockerfile").read_text())
    result = await ImageBuilder(host, lambda s, line: lines.append(line)).build(BuildRequest(
        context=EXAMPLES / "flask-hello", plan=plan, out_dir=tmp_path / "out", egress=True, timeout_s=900))
    vm = await host.clone(result.snapshot)
    try:
        resp = await guest_request(vm.require_agent(), 8080, "GET", "/")
        assert resp.status == 200 and json.loads(resp.body)["message"] == "Hello, World!"
        # The CA bundle lived in /run (a tmpfs) during the build: it is not in the image.
        leftover = await vm.require_agent().exec(["test", "-e", "/run/ember-build/ca-certificates.crt"])
        assert leftover.exit_code != 0
    finally:
        await host.destroy(vm)


async def test_build_steps_cannot_reach_the_hosts_loopback(host: Host, tmp_path: Path) -> None:
    """A RUN step with egress tries the host's 127.0.0.1 (via 10.0.2.2, user-mode NAT's host alias): refused."""
    hits: list[bytes] = []

    async def canary(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.read(100))
        writer.close()

    server = await asyncio.start_server(canary, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    probe = f"import socket; socket.create_connection(('10.0.2.2', {port}), 5).sendall(b'escaped')"
    (ctx / "Dockerfile").write_text(f'FROM python:3.11-slim\nRUN python3 -c "{probe}"\nCMD ["true"]\n')
    try:
        with pytest.raises(BuildFailed, match=r"(?s)line 2: RUN failed:.*(refused|timed out|unreachable)"):
            await ImageBuilder(host, lambda s, line: None).build(
                BuildRequest(context=ctx, plan=plan_dockerfile((ctx / "Dockerfile").read_text()),
                             out_dir=tmp_path / "out", egress=True, timeout_s=300))
    finally:
        server.close()
        await server.wait_closed()
    assert hits == []
