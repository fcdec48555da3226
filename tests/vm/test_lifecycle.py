"""The MicroVM lifecycle on real VMs: launch with the run hook, suspend/resume with hooks, timers, recovery."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ember.contract import ImageConfig
from ember.contract.enums import BuildState, ImageVersionState, MicrovmState
from ember.host.guest_http import guest_request
from ember.host.host import Host
from ember.images.artifact import make_zip
from ember.images.service import ImageService
from ember.lifecycle.service import MicrovmService
from ember.store import Store, accounts, builds, images, microvms, transitions, versions
from ember.store.models import Microvm
from tests.framework.paths import EXAMPLES

pytestmark = pytest.mark.vm

S = MicrovmState
ACCOUNT = "123456789012"
SECRET = b"k" * 32


def _config(zip_path: Path) -> ImageConfig:
    hooks = {"run": "ENABLED", "resume": "ENABLED", "suspend": "ENABLED", "terminate": "ENABLED"}
    return ImageConfig.model_validate({
        "baseImageArn": "arn:aws:lambda:us-east-1:aws:microvm-image:python-3.11",
        "buildRoleArn": "arn:aws:iam::123456789012:role/build",
        "codeArtifact": {"uri": f"file://{zip_path}"},
        "hooks": {"port": 8080, "microvmHooks": hooks,
                  "microvmImageHooks": {"ready": "ENABLED", "validate": "ENABLED"}},
    })


@pytest.fixture(scope="module")
async def stack(host: Host, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Store, ImageService]]:
    home = tmp_path_factory.mktemp("lifecycle")
    store = Store.open(f"sqlite:///{home / 'ember.db'}")
    zip_path = make_zip(EXAMPLES / "code-interpreter", home / "ci.zip")
    service = ImageService(store, host, images_dir=home / "images", build_egress=False)
    with store.write() as s:
        accounts.ensure_account(s, ACCOUNT)
        image = images.create_image(s, ACCOUNT, "ci")
        version = versions.create_version(s, image, _config(zip_path))
        build = builds.create_build(s, version, architecture="X86_64", chipset="GENERIC", chipset_generation="tcg")
        build_id = build.build_id
    service.schedule(build_id, file_root=None)  # the test's own zip, a local path outside any upload folder
    await service.wait_idle()
    with store.read() as s:
        build = builds.find_build(s, build_id)
        assert build is not None and build.state is BuildState.SUCCESSFUL, build and build.state_reason
        assert versions.get_version_by_id(s, build.version_id).state is ImageVersionState.SUCCESSFUL
    yield store, service
    store.close()


@pytest.fixture
async def svc(stack: tuple[Store, ImageService], host: Host) -> AsyncIterator[MicrovmService]:
    store, _ = stack
    service = MicrovmService(store, host, token_secret=SECRET, tick_s=0.2)
    service._timer = asyncio.get_running_loop().create_task(service._timers())
    yield service
    service._timer.cancel()
    for vm_id, live in list(service._live.items()):
        if live.op is not None:
            live.op.cancel()
        await service._discard(live)
        del vm_id


def _run(store: Store, *, payload: str = "p", idle: dict | None = None, max_s: int = 28800) -> str:
    with store.write() as s:
        image = images.get_image(s, ACCOUNT, "ci")
        version = versions.resolve_launch_version(s, image, None)
        row = microvms.insert_microvm(s, account_id=ACCOUNT, image=image, version=version, endpoint="e",
                                      run_hook_payload=payload, maximum_duration_s=max_s)
        if idle is not None:
            row.idle_policy = idle
        return row.id


def _row(store: Store, vm_id: str) -> Microvm:
    with store.read() as s:
        row = microvms.get_microvm(s, ACCOUNT, vm_id)
        s.expunge(row)
        return row


async def _wait_state(store: Store, vm_id: str, state: MicrovmState, timeout: float = 120) -> Microvm:
    deadline = time.monotonic() + timeout
    while True:
        row = _row(store, vm_id)
        if row.state is state:
            return row
        assert time.monotonic() < deadline, f"{vm_id} is {row.state} ({row.state_reason}), not {state}"
        await asyncio.sleep(0.1)


def _resume_seconds(store: Store, vm_id: str) -> list[float]:
    """How long each recorded resume of the MicroVM took (from the start on its SUSPENDED -> RUNNING event)."""
    with store.read() as s:
        events = transitions.list_events(s, vm_id)
    return [(e.at - e.started_at).total_seconds() for e in events
            if (e.from_state, e.to_state) == (S.SUSPENDED, S.RUNNING) and e.started_at is not None]


async def _state_json(svc: MicrovmService, vm_id: str) -> dict:
    agent = await svc.ensure_running(vm_id, timeout=120)
    return json.loads((await guest_request(agent, 8080, "GET", "/state")).body)


async def test_two_launches_get_their_payload_and_fresh_tokens(svc: MicrovmService, stack) -> None:  # type: ignore[no-untyped-def]
    store, _ = stack
    a, b = _run(store, payload="alpha"), _run(store, payload="beta")
    svc.launch(a)
    svc.launch(b)
    await _wait_state(store, a, S.RUNNING)
    await _wait_state(store, b, S.RUNNING)
    sa, sb = await _state_json(svc, a), await _state_json(svc, b)
    assert sa["run_payload"] == "alpha" and sb["run_payload"] == "beta"
    assert sa["token_after_run"] != sb["token_after_run"]
    assert sa["hooks"]["run"] == 1


async def test_explicit_suspend_and_resume_keep_pid_memory_files_and_call_hooks(svc: MicrovmService, stack) -> None:  # type: ignore[no-untyped-def]
    store, _ = stack
    vm_id = _run(store)
    svc.launch(vm_id)
    await _wait_state(store, vm_id, S.RUNNING)
    agent = await svc.ensure_running(vm_id, 60)
    await guest_request(agent, 8080, "POST", "/execute", body=b'{"code": "kept = 1234"}')
    await guest_request(agent, 8080, "POST", "/file", body=b'{"path": "note.txt", "text": "on disk"}')
    before = await _state_json(svc, vm_id)

    svc.request_suspend(ACCOUNT, vm_id)
    await _wait_state(store, vm_id, S.SUSPENDED)
    svc.request_resume(ACCOUNT, vm_id)
    await _wait_state(store, vm_id, S.RUNNING)
    took = _resume_seconds(store, vm_id)
    assert len(took) == 1 and 0 < took[0] < 120, took

    after = await _state_json(svc, vm_id)
    assert after["pid"] == before["pid"]
    assert after["hooks"]["suspend"] == 1 and after["hooks"]["resume"] == 1
    agent = await svc.ensure_running(vm_id, 60)
    ran = await guest_request(agent, 8080, "POST", "/execute", body=b'{"code": "print(kept)"}')
    assert json.loads(ran.body)["stdout"] == "1234\n"
    got = await guest_request(agent, 8080, "GET", "/file?path=note.txt")
    assert json.loads(got.body)["text"] == "on disk"


async def test_idle_vm_suspends_a_request_resumes_it_then_it_terminates(svc: MicrovmService, stack) -> None:  # type: ignore[no-untyped-def]
    store, _ = stack
    vm_id = _run(store, idle={"maxIdleDurationSeconds": 2, "suspendedDurationSeconds": 4, "autoResumeEnabled": True})
    svc.launch(vm_id)
    await _wait_state(store, vm_id, S.RUNNING)
    await _wait_state(store, vm_id, S.SUSPENDED, timeout=60)
    # A request arriving while suspended resumes the VM and is served.
    state = await _state_json(svc, vm_id)
    assert state["hooks"]["resume"] == 1
    assert _row(store, vm_id).state is S.RUNNING
    took = _resume_seconds(store, vm_id)
    assert len(took) == 1 and 0 < took[0] < 120, took
    await _wait_state(store, vm_id, S.SUSPENDED, timeout=60)
    row = await _wait_state(store, vm_id, S.TERMINATED, timeout=60)
    assert "suspendedDurationSeconds" in (row.state_reason or "")


async def test_maximum_duration_ends_a_partly_suspended_vm(svc: MicrovmService, stack) -> None:  # type: ignore[no-untyped-def]
    store, _ = stack
    vm_id = _run(store, max_s=25)
    svc.launch(vm_id)
    await _wait_state(store, vm_id, S.RUNNING)
    svc.request_suspend(ACCOUNT, vm_id)
    await _wait_state(store, vm_id, S.SUSPENDED)
    row = await _wait_state(store, vm_id, S.TERMINATED, timeout=60)
    assert "maximumDurationInSeconds" in (row.state_reason or "")
    assert not (svc.host.vms_dir / vm_id).exists()


async def test_terminate_during_resume_wins(svc: MicrovmService, stack) -> None:  # type: ignore[no-untyped-def]
    store, _ = stack
    vm_id = _run(store)
    svc.launch(vm_id)
    await _wait_state(store, vm_id, S.RUNNING)
    svc.request_suspend(ACCOUNT, vm_id)
    await _wait_state(store, vm_id, S.SUSPENDED)
    svc.request_resume(ACCOUNT, vm_id)
    await asyncio.sleep(0.05)
    svc.request_terminate(ACCOUNT, vm_id)
    row = await _wait_state(store, vm_id, S.TERMINATED)
    assert row.state is S.TERMINATED
    await asyncio.sleep(0.5)
    assert _row(store, vm_id).state is S.TERMINATED
    assert vm_id not in svc.host.vms and not (svc.host.vms_dir / vm_id).exists()


async def test_restart_suspends_running_vms_and_resumes_them_after(stack, tmp_path: Path, kit) -> None:  # type: ignore[no-untyped-def]
    store, _ = stack
    host = Host(home=tmp_path, kit=kit)  # its own host: stop() closes every VM of its host
    first = MicrovmService(store, host, token_secret=SECRET)
    vm_id = _run(store)
    first.launch(vm_id)
    await _wait_state(store, vm_id, S.RUNNING)
    pid = (await _state_json(first, vm_id))["pid"]
    await first.stop()  # what SIGTERM to ember serve does
    assert _row(store, vm_id).state is S.SUSPENDED
    second = MicrovmService(store, host, token_secret=SECRET)
    counts = await second.start()
    try:
        assert counts["kept_suspended"] >= 1
        assert (await _state_json(second, vm_id))["pid"] == pid
    finally:
        second.request_terminate(ACCOUNT, vm_id)
        await _wait_state(store, vm_id, S.TERMINATED)
        await second.stop()


async def test_a_crashed_vmm_is_reported_terminated(svc: MicrovmService, stack) -> None:  # type: ignore[no-untyped-def]
    store, _ = stack
    vm_id = _run(store)
    svc.launch(vm_id)
    await _wait_state(store, vm_id, S.RUNNING)
    live = svc._live[vm_id]
    assert live.vm is not None and live.vm.pid is not None
    os.kill(live.vm.pid, signal.SIGKILL)
    row = await _wait_state(store, vm_id, S.TERMINATED, timeout=30)
    assert "SIGKILL" in (row.state_reason or "")


BAD_RUN_APP = '''
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        code = 500 if self.path.endswith("/run") else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_POST
HTTPServer(("0.0.0.0", 8080), H).serve_forever()
'''


async def test_failing_run_hook_fails_the_launch_with_the_reason(stack, host: Host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, service = stack
    ctx = tmp_path / "badrun"
    ctx.mkdir()
    (ctx / "app.py").write_text(BAD_RUN_APP)
    (ctx / "Dockerfile").write_text('FROM python:3.11-slim\nCOPY app.py /app.py\nCMD ["python3", "/app.py"]\n')
    config = _config(make_zip(ctx, tmp_path / "badrun.zip"))
    with store.write() as s:
        image = images.create_image(s, ACCOUNT, "badrun")
        version = versions.create_version(s, image, config)
        build_id = builds.create_build(s, version, architecture="X86_64", chipset="GENERIC",
                                       chipset_generation="tcg").build_id
    service.schedule(build_id, file_root=None)  # the test's own zip, a local path outside any upload folder
    await service.wait_idle()
    svc = MicrovmService(store, host, token_secret=SECRET)
    with store.write() as s:
        image = images.get_image(s, ACCOUNT, "badrun")
        row = microvms.insert_microvm(s, account_id=ACCOUNT, image=image,
                                      version=versions.resolve_launch_version(s, image, None), endpoint="e")
        vm_id = row.id
    svc.launch(vm_id)
    row = await _wait_state(store, vm_id, S.TERMINATED)
    assert "run hook answered 500" in (row.state_reason or "")
    assert not (host.vms_dir / vm_id).exists()


async def test_app_log_lines_reach_the_store_within_two_seconds(svc: MicrovmService, stack) -> None:  # type: ignore[no-untyped-def]
    from ember.lifecycle.logpump import LOG_OWNER_MICROVM
    from ember.store import logs

    store, _ = stack
    vm_id = _run(store)
    svc.launch(vm_id)
    await _wait_state(store, vm_id, S.RUNNING)
    agent = await svc.ensure_running(vm_id, 60)
    t0 = time.monotonic()
    await guest_request(agent, 8080, "GET", "/state?marker=log-probe-1")
    while True:
        with store.read() as s:
            lines = [line.line for line in logs.read_logs(s, LOG_OWNER_MICROVM, vm_id)]
        if any("log-probe-1" in line for line in lines):
            break
        assert time.monotonic() - t0 < 2.0, f"no log line after 2 s: {lines[-5:]}"
        await asyncio.sleep(0.05)
