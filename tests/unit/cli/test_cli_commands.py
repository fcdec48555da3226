"""The CLI against the real API (fake services, no VMs): output, --json, and exit codes 0/1/3/4."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ember.cli.main import main
from ember.store import logs

from .api_server import RunningApi, running_api


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningApi]:
    yield from running_api(tmp_path, monkeypatch)


def ember(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM python:3.11-slim\nARG MODE=dev\nCOPY app.py /app.py\n")
    (d / "app.py").write_text("print('hi')\n")
    return d


def test_image_build_then_rebuild_lists_and_inspects(api: RunningApi, app_dir: Path) -> None:
    first = ember("image", "build", str(app_dir), "--name", "ci", "--memory", "1G", "--env", "A=1",
                  "--build-arg", "MODE=prod", "--hooks", "ready,validate,run,resume,suspend", "--wait")
    assert first.exit_code == 0, first.output
    assert "ci version 1 SUCCESSFUL" in first.output
    second = ember("image", "build", str(app_dir), "--name", "ci", "--wait", "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["imageVersion"] == "2"

    listed = ember("image", "ls")
    assert listed.exit_code == 0 and "ci" in listed.output and "NAME" in listed.output
    assert [i["name"] for i in json.loads(ember("image", "ls", "--json").stdout)] == ["ci"]
    assert "latest active" in ember("image", "get", "ci").output
    versions = ember("image", "versions", "ci", "--json")
    v1 = json.loads(versions.stdout)[0]
    assert v1["resources"] == [{"minimumMemoryInMiB": 1024}] and v1["environmentVariables"] == {"A": "1"}
    assert v1["hooks"]["microvmImageHooks"] == {"ready": "ENABLED", "validate": "ENABLED"}
    table = ember("image", "versions", "ci").output
    assert "1024M" in table and "ready,validate" in table
    builds = json.loads(ember("image", "builds", "ci", "--json").stdout)
    assert len(builds) == 1 and builds[0]["imageVersion"] == "2"
    assert ember("image", "logs", "ci", "1").exit_code == 0
    assert ember("image", "rm", "ci").exit_code == 0


def test_image_build_without_wait_says_how_to_follow(api: RunningApi, app_dir: Path) -> None:
    result = ember("image", "build", str(app_dir), "--name", "quick")
    assert result.exit_code == 0, result.output
    assert "ember image logs quick 1 -f" in result.output


def test_image_not_found_exits_3(api: RunningApi) -> None:
    result = ember("image", "get", "nope")
    assert result.exit_code == 3
    assert result.output.startswith("error: ResourceNotFoundException:") and len(result.output.splitlines()) == 1


def test_microvm_lifecycle_and_exit_codes(api: RunningApi, app_dir: Path) -> None:
    assert ember("image", "build", str(app_dir), "--name", "ci", "--wait").exit_code == 0
    ran = ember("run", "ci", "--idle", "5m", "--suspended-for", "1h", "--max-duration", "2h", "--payload", "p",
                "--wait")
    assert ran.exit_code == 0, ran.output
    vm_id = ran.stdout.strip()
    assert vm_id.startswith("mvm-") and len(vm_id) == 36

    assert vm_id in ember("ls").output
    detail = json.loads(ember("get", vm_id, "--json").stdout)
    assert detail["state"] == "RUNNING" and detail["maximumDurationInSeconds"] == 7200
    assert detail["idlePolicy"] == {"maxIdleDurationSeconds": 300, "suspendedDurationSeconds": 3600,
                                    "autoResumeEnabled": True}
    assert "suspend after 5m idle" in ember("get", vm_id).output

    assert ember("suspend", vm_id, "--wait").exit_code == 0
    assert json.loads(ember("get", vm_id, "--json").stdout)["state"] == "SUSPENDED"
    assert ember("resume", vm_id).exit_code == 0
    assert ember("resume", vm_id).exit_code == 0  # idempotent on a RUNNING MicroVM

    token = ember("token", vm_id)
    assert token.exit_code == 0 and token.stdout.startswith("ember1.")
    assert json.loads(ember("token", vm_id, "--port", "9000", "--json").stdout)["port"] == 9000

    assert "RUNNING 1" in ember("top").output
    assert ember("terminate", vm_id, "--wait").exit_code == 0
    assert vm_id not in ember("ls").output
    assert vm_id in ember("ls", "--all").output
    assert ember("terminate", vm_id).exit_code == 0  # idempotent
    conflict = ember("suspend", vm_id)
    assert conflict.exit_code == 4 and "ConflictException" in conflict.output and "TERMINATED" in conflict.output


def test_missing_microvm_exits_3(api: RunningApi) -> None:
    result = ember("get", "mvm-" + "0" * 32)
    assert result.exit_code == 3 and "ResourceNotFoundException" in result.output
    several = ember("suspend", "mvm-" + "0" * 32, "mvm-" + "1" * 32)
    assert several.exit_code == 3 and several.output.count("error:") == 2


def test_logs(api: RunningApi, app_dir: Path) -> None:
    assert ember("image", "build", str(app_dir), "--name", "ci", "--wait").exit_code == 0
    vm_id = ember("run", "ci").stdout.strip()
    with api.store.write() as session:
        logs.append_logs(session, logs.OWNER_MICROVM, vm_id, ["listening on 8080", "ready"])
    assert ember("logs", vm_id).stdout == "listening on 8080\nready\n"
    assert ember("logs", vm_id, "--since", "1").stdout == "ready\n"
    assert " stdout  listening on 8080" in ember("logs", vm_id, "-t").stdout
    first = json.loads(ember("logs", vm_id, "--json").stdout.splitlines()[0])
    assert first["seq"] == 1 and first["line"] == "listening on 8080"


def test_credentials_and_ca(api: RunningApi, monkeypatch: pytest.MonkeyPatch) -> None:
    result = ember("credentials")
    assert result.exit_code == 0
    assert "export AWS_ACCESS_KEY_ID=" in result.stdout and "export AWS_REGION=us-east-1" in result.stdout
    stored = json.loads((api.home / "credentials.json").read_text())
    assert f"export AWS_SECRET_ACCESS_KEY={stored['secret_access_key']}" in result.stdout
    monkeypatch.setenv("EMBER_ROOT_ACCESS_KEY_ID", "AKIAOVERRIDE")
    assert json.loads(ember("credentials", "--json").stdout)["accessKeyId"] == "AKIAOVERRIDE"

    missing = ember("ca")
    assert missing.exit_code == 3 and "ember serve" in missing.output
    (api.home / "tls").mkdir()
    (api.home / "tls" / "ca.pem").write_text("pem")
    assert ember("ca").stdout.strip() == str(api.home / "tls" / "ca.pem")


def test_a_failed_build_exits_1_with_the_reason(api: RunningApi, app_dir: Path) -> None:
    import threading
    import time

    images = api.server.ctx.images
    images.auto_succeed = False  # type: ignore[attr-defined]

    def fail_the_build() -> None:
        deadline = time.monotonic() + 10
        while not images.scheduled and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        images.finish(images.scheduled[0], ok=False, reason="step 3/3 RUN exited with status 2")  # type: ignore[attr-defined]

    threading.Thread(target=fail_the_build, daemon=True).start()
    result = ember("image", "build", str(app_dir), "--name", "broken", "--wait")
    assert result.exit_code == 1
    assert "error: build of broken version 1 failed" in result.output
    assert "step 3/3 RUN exited with status 2" in result.output
