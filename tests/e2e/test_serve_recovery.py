"""kill -9 of ``ember serve`` in the middle of a suspend, then a restart: nothing is lost, nothing is orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ember.images.artifact import make_zip
from ember.images.bases import ensure_base
from ember.server import root_credentials
from tests.framework.paths import EXAMPLES
from tests.framework.server import REGION, free_port, wait_for
from tests.framework.vms import qemu_pids_under

pytestmark = pytest.mark.vm

SERVE = ("import asyncio, sys; from pathlib import Path; from ember.server import ServeSettings, serve_forever; "
         "asyncio.run(serve_forever(ServeSettings(home=Path(sys.argv[1]), api_port=int(sys.argv[2]), "
         "gateway_port=int(sys.argv[3]), gateway_tls=False)))")


class ServeProcess:
    """``ember serve`` as a separate process, so that it can be SIGKILLed."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.api_port, self.gateway_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.home / "serve.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", SERVE, str(self.home), str(self.api_port),
                                          str(self.gateway_port)], stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/healthz", timeout=2)
                return
            except OSError:
                assert self.proc.poll() is None, (self.home / "serve.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "ember serve did not come up"
                time.sleep(0.2)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(300)

    def client(self) -> Any:
        import boto3
        import botocore.session

        from tests.framework.server import MICROVM_CTL_DATA

        creds = root_credentials(self.home)
        core = botocore.session.Session()
        core.get_component("data_loader").search_paths.append(MICROVM_CTL_DATA)
        return boto3.session.Session(botocore_session=core, region_name=REGION,
                                     aws_access_key_id=creds.access_key_id,
                                     aws_secret_access_key=creds.secret_access_key).client(
            "lambda-microvms", endpoint_url=f"http://127.0.0.1:{self.api_port}")

    def upload(self, zip_path: Path) -> str:
        """The ``file://`` URI of ``zip_path`` uploaded with ``POST /ember/artifacts``."""
        from tests.framework.server import upload_artifact

        creds = root_credentials(self.home)
        return upload_artifact(f"http://127.0.0.1:{self.api_port}", creds.access_key_id, creds.secret_access_key,
                               zip_path)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    ensure_base("python-3.11")
    server = ServeProcess(tmp_path)
    server.start()
    yield server
    server.stop()
    for pid in qemu_pids_under(tmp_path):
        os.kill(pid, signal.SIGKILL)


def _execute(serve: ServeProcess, client: Any, vm: dict[str, Any], code: str) -> dict[str, Any]:
    token = client.create_microvm_auth_token(microvmIdentifier=vm["microvmId"], expirationInMinutes=5,
                                             allowedPorts=[{"port": 8080}])["authToken"]
    resp = httpx.post(f"http://{vm['endpoint']}/execute", json={"code": code}, headers=dict(token), timeout=120)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_kill_9_during_suspend_then_restart_keeps_the_vm(serve: ServeProcess, tmp_path: Path) -> None:
    client = serve.client()
    artifact = make_zip(EXAMPLES / "code-interpreter", tmp_path / "ci.zip")
    created = client.create_microvm_image(
        name="ci", baseImageArn=f"arn:aws:lambda:{REGION}:aws:microvm-image:python-3.11",
        buildRoleArn="arn:aws:iam::123456789012:role/build", codeArtifact={"uri": serve.upload(artifact)},
        hooks={"port": 8080, "microvmImageHooks": {"ready": "ENABLED"}})
    got, _ = wait_for("build", lambda: client.get_microvm_image_version(imageIdentifier="ci",
                                                                        imageVersion=created["imageVersion"]),
                      lambda v: v["state"] in ("SUCCESSFUL", "FAILED"), 900, 1.0)
    assert got["state"] == "SUCCESSFUL", got.get("stateReason")
    vm_id = client.run_microvm(imageIdentifier="ci")["microvmId"]
    vm, _ = wait_for("run", lambda: client.get_microvm(microvmIdentifier=vm_id),
                     lambda v: v["state"] in ("RUNNING", "TERMINATED"), 180)
    assert vm["state"] == "RUNNING", vm.get("stateReason")
    _execute(serve, client, vm, "survivor = 'still here'")

    client.suspend_microvm(microvmIdentifier=vm_id)
    serve.kill9()  # in the middle of SUSPENDING (the call returns before the snapshot is taken)

    serve.start()
    client = serve.client()
    state, _ = wait_for("reconcile", lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
                        lambda s: s in ("RUNNING", "SUSPENDED", "TERMINATED"), 60)
    assert state in ("RUNNING", "SUSPENDED"), client.get_microvm(microvmIdentifier=vm_id).get("stateReason")
    if state == "SUSPENDED":
        client.resume_microvm(microvmIdentifier=vm_id)
        wait_for("resume", lambda: client.get_microvm(microvmIdentifier=vm_id)["state"],
                 lambda s: s == "RUNNING", 120)
    out = _execute(serve, client, vm, "print(survivor)")
    assert out["stdout"] == "still here\n"
    # Exactly one VMM: the adopted (or resumed) one; nothing orphaned.
    assert len(qemu_pids_under(tmp_path)) == 1

    serve.stop()  # SIGTERM: running VMs are suspended, no VMM is left
    assert qemu_pids_under(tmp_path) == []
    serve.start()
    client = serve.client()
    assert client.get_microvm(microvmIdentifier=vm_id)["state"] == "SUSPENDED"
    out = _execute(serve, client, vm, "print(survivor)")  # the gateway resumes it
    assert out["stdout"] == "still here\n"

