"""Log routes read as NDJSON; waiting for a MicroVM state or an image version, with progress and failures."""

from __future__ import annotations

import json

import pytest

from ember.sdk import Client, WaitFailed, WaitTimeout

from . import samples
from .fakes import FakeServer, Reply

VM = samples.vm_id(3)


def ndjson(*lines: dict) -> Reply:
    return Reply(200, "".join(json.dumps(line) + "\n" for line in lines).encode(),
                 {"Content-Type": "application/x-ndjson"})


def test_microvm_logs_are_read_line_by_line(server: FakeServer, client: Client) -> None:
    server.route("GET", f"/2025-09-09/microvms/{VM}/logs", ndjson(
        {"seq": 4, "at": samples.T0, "stream": "stdout", "line": "listening on 8080"},
        {"seq": 5, "at": samples.T0 + 1, "stream": "stderr", "line": "warning: x"}))
    lines = list(client.microvms.logs(VM, follow=True, since=3))
    assert [(line.seq, line.stream, line.line) for line in lines] == [(4, "stdout", "listening on 8080"),
                                                                     (5, "stderr", "warning: x")]
    assert lines[1].time.timestamp() == samples.T0 + 1
    assert server.requests[0].query == {"follow": "true", "since": "3"}


def test_build_logs_default_to_the_versions_first_build(server: FakeServer, client: Client) -> None:
    build_id = "f" * 32
    server.route("GET", "/2025-09-09/microvm-images/ci/versions/2/builds", Reply(200, {"items": [
        samples.build(build_id, v="2")]}))
    server.route("GET", f"/2025-09-09/microvm-images/ci/versions/2/builds/{build_id}/logs", ndjson(
        {"seq": 1, "at": samples.T0, "stream": "build", "line": "step 1/3 FROM python:3.11-slim"}))
    assert [line.line for line in client.images.build_logs("ci", "2", follow=False)] == [
        "step 1/3 FROM python:3.11-slim"]
    assert server.requests[-1].query == {}


def test_wait_for_state_reports_progress(server: FakeServer, client: Client) -> None:
    server.route("GET", f"/2025-09-09/microvms/{VM}", [Reply(200, samples.microvm(VM, "PENDING")),
                                                       Reply(200, samples.microvm(VM, "RUNNING"))])
    seen: list[str] = []
    detail = client.microvms.wait_for_state(VM, poll=0.01, on_progress=lambda d: seen.append(d.state))
    assert detail.state == "RUNNING" and seen == ["PENDING", "RUNNING"]


def test_wait_for_state_fails_when_the_vm_terminates(server: FakeServer, client: Client) -> None:
    server.route("GET", f"/2025-09-09/microvms/{VM}", Reply(200, samples.microvm(
        VM, "TERMINATED", stateReason="run hook answered 500")))
    with pytest.raises(WaitFailed, match="TERMINATED: run hook answered 500") as caught:
        client.microvms.wait_for_state(VM, poll=0.01)
    assert caught.value.last.state == "TERMINATED"
    assert client.microvms.wait_for_state(VM, "TERMINATED").state == "TERMINATED"


def test_wait_for_state_times_out(server: FakeServer, client: Client) -> None:
    server.route("GET", f"/2025-09-09/microvms/{VM}", Reply(200, samples.microvm(VM, "PENDING")))
    with pytest.raises(WaitTimeout, match=r"did not reach RUNNING within 0.05 s \(last state PENDING\)"):
        client.microvms.wait_for_state(VM, timeout=0.05, poll=0.01)


def test_run_with_wait_returns_a_running_handle(server: FakeServer, client: Client) -> None:
    server.route("POST", "/2025-09-09/microvms", Reply(200, samples.microvm(VM, "PENDING")))
    server.route("GET", f"/2025-09-09/microvms/{VM}", Reply(200, samples.microvm(VM, "RUNNING")))
    vm = client.microvms.run("ci", wait=True)
    assert vm.id == VM and vm.detail is not None and vm.detail.state == "RUNNING"


def test_wait_for_version_succeeds_or_fails_with_the_reason(server: FakeServer, client: Client) -> None:
    route = "/2025-09-09/microvm-images/ci/versions/1"
    server.route("GET", route, [Reply(200, samples.version(state="IN_PROGRESS")),
                                Reply(200, samples.version(state="SUCCESSFUL"))])
    assert client.images.wait_for_version("ci", "1", poll=0.01).state == "SUCCESSFUL"
    server.route("GET", route, Reply(200, samples.version(state="FAILED", stateReason="step 2/3 RUN exited 1")))
    with pytest.raises(WaitFailed, match="FAILED: step 2/3 RUN exited 1"):
        client.images.wait_for_version("ci", "1", poll=0.01)
