"""Request bodies from Python arguments; ``images.build`` uploads a folder, then creates or updates."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ember.sdk import Client
from ember.sdk._bodies import image_body, run_body
from ember.sdk.hooks import hooks_config

from . import samples
from .fakes import FakeServer, Reply


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    (d / ".git").mkdir(parents=True)
    (d / ".git" / "HEAD").write_text("ref")
    (d / "Dockerfile").write_text("FROM python:3.11-slim\nARG GREETING=hi\narg  level\nCOPY app.py /app.py\n")
    (d / "app.py").write_text("print('x')\n")
    return d


def test_hook_names_become_the_hooks_member() -> None:
    assert hooks_config(["ready", "validate", "run", "suspend"], 9000) == {
        "port": 9000,
        "microvmImageHooks": {"ready": "ENABLED", "validate": "ENABLED"},
        "microvmHooks": {"run": "ENABLED", "suspend": "ENABLED"},
    }
    assert hooks_config(None) is None
    assert hooks_config(None, 8081) == {"port": 8081}
    with pytest.raises(ValueError, match="unknown hook restart"):
        hooks_config(["run", "restart"])


def test_image_body_has_the_required_members_and_only_what_was_asked() -> None:
    body = image_body(source_uri="file:///a.zip", region="eu-west-1", memory_mib=1024, env={"A": "1"}, egress=True,
                      disk_size_mib=4096)
    assert body == {
        "baseImageArn": "arn:aws:lambda:eu-west-1:aws:microvm-image:python-3.11",
        "buildRoleArn": "arn:aws:iam::000000000000:role/ember-build",
        "codeArtifact": {"uri": "file:///a.zip"},
        "resources": [{"minimumMemoryInMiB": 1024}],
        "environmentVariables": {"A": "1"},
        "egressNetworkConnectors": ["arn:aws:lambda:eu-west-1:aws:network-connector:aws-network-connector:"
                                    "INTERNET_EGRESS"],
        "x-ember-diskSizeInMiB": 4096,
    }
    assert image_body(source_uri="s3://b/k", region="us-east-1", base_image="debian-bookworm")["baseImageArn"] == (
        "arn:aws:lambda:us-east-1:aws:microvm-image:debian-bookworm")


def test_run_body_idle_policy_and_connectors() -> None:
    body = run_body("ci", region="us-east-1", idle=timedelta(minutes=5), suspended_for=3600, max_duration=7200.0,
                    payload="p", shell=True)
    assert body["idlePolicy"] == {"maxIdleDurationSeconds": 300, "suspendedDurationSeconds": 3600,
                                  "autoResumeEnabled": True}
    assert body["maximumDurationInSeconds"] == 7200 and body["runHookPayload"] == "p"
    assert [c.rsplit(":", 1)[-1] for c in body["ingressNetworkConnectors"]] == ["ALL_INGRESS", "SHELL_INGRESS"]
    assert run_body("ci", region="us-east-1") == {"imageIdentifier": "ci"}
    assert run_body("ci", region="r", idle=60, auto_resume=False)["idlePolicy"]["autoResumeEnabled"] is False
    with pytest.raises(ValueError, match="need idle"):
        run_body("ci", region="us-east-1", suspended_for=60)


def test_build_creates_a_missing_image_and_updates_an_existing_one(server: FakeServer, client: Client,
                                                                   app_dir: Path) -> None:
    server.route("GET", "/2025-09-09/microvm-images/ci", [Reply(404, {"message": "no image ci"},
                                                                {"x-amzn-ErrorType": "ResourceNotFoundException"}),
                                                          Reply(200, samples.image())])
    server.route("POST", "/2025-09-09/microvm-images", Reply(201, samples.created()))
    server.route("PUT", "/2025-09-09/microvm-images/ci", Reply(200, {**samples.created(v="2"), "updatedAt": 1.0}))
    uploaded = {"uri": "file:///srv/ember/artifacts/111111111111/ab.zip", "sha256": "ab", "sizeBytes": 1}
    server.route("POST", "/ember/artifacts", Reply(200, uploaded))
    first = client.images.build("ci", app_dir, hooks=["ready", "run"], memory_mib=1024, tags={"team": "a"})
    second = client.images.build("ci", app_dir, hooks=["ready", "run"], memory_mib=1024, tags={"team": "a"})
    assert (first.imageVersion, second.imageVersion) == ("1", "2")
    create, update = (r.json() for r in server.requests if r.method in ("POST", "PUT") and "/ember/" not in r.path)
    assert create["name"] == "ci" and create["tags"] == {"team": "a"}
    assert "name" not in update and "tags" not in update  # create-only members (CONTRACT §1.4)
    assert update["hooks"] == create["hooks"] == {"port": 8080, "microvmImageHooks": {"ready": "ENABLED"},
                                                  "microvmHooks": {"run": "ENABLED"}}
    assert create["codeArtifact"]["uri"] == update["codeArtifact"]["uri"] == uploaded["uri"]
    assert len([r for r in server.requests if r.path == "/ember/artifacts"]) == 2
