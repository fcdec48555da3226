"""End to end through boto3: the real ``ember serve`` (API, builds, VMs under TCG) driven only by the public API.

One test walks the whole path a client takes: zip the code-interpreter example, upload it
(``POST /ember/artifacts``), CreateMicrovmImage from the ``file://`` URI it answers, on the python-3.11 base,
wait for the version to be SUCCESSFUL, RunMicrovm, wait for RUNNING, list with pagination, suspend, resume and
terminate. It prints how long each step took.

The server keeps its database, images and VMs in a temporary home; the guest kit and the managed bases come from
the default ``EMBER_HOME`` (where ``ember setup`` built them), which is where ``Host`` and the image builder look.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ember.images.artifact import make_zip
from ember.images.bases import ensure_base
from ember.server import ServeSettings
from tests.framework.paths import EXAMPLES
from tests.framework.server import REGION, ServerThread, artifact_uri, build_log, client_for, free_port, wait_for

pytestmark = pytest.mark.vm

EXAMPLE = EXAMPLES / "code-interpreter"
BUILD_TIMEOUT_S = 900.0
STATE_TIMEOUT_S = 180.0
BUILD_POLL_S = 1.0
HOOKS = {
    "port": 8080,
    "microvmHooks": {"run": "ENABLED", "resume": "ENABLED", "suspend": "ENABLED"},
    "microvmImageHooks": {"ready": "ENABLED", "validate": "ENABLED"},
}


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    ensure_base("python-3.11")
    home = tmp_path_factory.mktemp("ember-home")
    settings = ServeSettings(home=home, api_port=free_port(), gateway_port=free_port(), gateway_tls=False)
    running = ServerThread(settings)
    running.start()
    yield running
    running.stop()


def test_image_to_terminated_microvm_through_boto3(serve: ServerThread, tmp_path: Path) -> None:
    client = client_for(serve)
    artifact = make_zip(EXAMPLE, tmp_path / "code-interpreter.zip")
    timings: dict[str, float] = {}

    created = client.create_microvm_image(
        name="code-interpreter",
        baseImageArn=f"arn:aws:lambda:{REGION}:aws:microvm-image:python-3.11",
        buildRoleArn="arn:aws:iam::123456789012:role/build",
        codeArtifact={"uri": artifact_uri(serve, artifact)},
        resources=[{"minimumMemoryInMiB": 512}],
        hooks=HOOKS,
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    version = created["imageVersion"]
    builds = client.list_microvm_image_builds(imageIdentifier="code-interpreter", imageVersion=version)["items"]
    assert len(builds) == 1
    got, timings["create image -> SUCCESSFUL"] = wait_for(
        "image version",
        lambda: client.get_microvm_image_version(imageIdentifier="code-interpreter", imageVersion=version),
        lambda v: v["state"] in ("SUCCESSFUL", "FAILED"),
        BUILD_TIMEOUT_S,
        BUILD_POLL_S,
    )
    if got["state"] != "SUCCESSFUL":
        log = build_log(serve, "code-interpreter", version, builds[0]["buildId"])
        pytest.fail(f"build failed: {got.get('stateReason')}\n--- build log ---\n{log}")
    assert got["status"] == "ACTIVE"
    assert build_log(serve, "code-interpreter", version, builds[0]["buildId"])

    t0 = time.monotonic()
    vm = client.run_microvm(imageIdentifier="code-interpreter", runHookPayload='{"tenant": "e2e"}')
    vm_id = vm["microvmId"]
    assert vm["state"] == "PENDING"
    wait_for(
        "run",
        lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
        lambda s: s in ("RUNNING", "TERMINATED"),
        STATE_TIMEOUT_S,
    )
    timings["run -> RUNNING"] = time.monotonic() - t0
    assert client.get_microvm(microvmIdentifier=vm_id)["state"] == "RUNNING", client.get_microvm(
        microvmIdentifier=vm_id
    ).get("stateReason")

    pages = list(client.get_paginator("list_microvms").paginate(PaginationConfig={"PageSize": 1}))
    assert [item["microvmId"] for page in pages for item in page["items"]] == [vm_id]

    t0 = time.monotonic()
    client.suspend_microvm(microvmIdentifier=vm_id)
    state, _ = wait_for(
        "suspend",
        lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
        lambda s: s not in ("RUNNING", "SUSPENDING"),
        STATE_TIMEOUT_S,
    )
    timings["suspend -> SUSPENDED"] = time.monotonic() - t0
    assert state == "SUSPENDED"

    t0 = time.monotonic()
    client.resume_microvm(microvmIdentifier=vm_id)
    state, _ = wait_for(
        "resume",
        lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
        lambda s: s != "SUSPENDED",
        STATE_TIMEOUT_S,
    )
    timings["resume -> RUNNING"] = time.monotonic() - t0
    assert state == "RUNNING", client.get_microvm(microvmIdentifier=vm_id).get("stateReason")

    token = client.create_microvm_auth_token(
        microvmIdentifier=vm_id, expirationInMinutes=5, allowedPorts=[{"port": 8080}]
    )["authToken"]
    assert "X-aws-proxy-auth" in token

    t0 = time.monotonic()
    client.terminate_microvm(microvmIdentifier=vm_id)
    state, _ = wait_for(
        "terminate",
        lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
        lambda s: s == "TERMINATED",
        STATE_TIMEOUT_S,
    )
    timings["terminate -> TERMINATED"] = time.monotonic() - t0
    client.terminate_microvm(microvmIdentifier=vm_id)  # idempotent
    print("\n" + "\n".join(f"{step}: {seconds:.1f} s" for step, seconds in timings.items()))
