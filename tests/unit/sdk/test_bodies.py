"""Request bodies from Python arguments, and the code artifact: zipped into uploads, build args applied."""

from __future__ import annotations

import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from ember.sdk import Client, errors
from ember.sdk._bodies import artifact_uri, image_body, run_body
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


def test_a_folder_is_zipped_into_uploads_without_git(app_dir: Path, tmp_path: Path) -> None:
    uri = artifact_uri(app_dir, name="ci", uploads=tmp_path / "up", server_is_local=True)
    assert uri.startswith("file://") and "/up/ci-" in uri and uri.endswith(".zip")
    with zipfile.ZipFile(uri.removeprefix("file://")) as z:
        assert sorted(z.namelist()) == ["Dockerfile", "app.py"]


def test_build_args_are_written_into_the_dockerfile(app_dir: Path, tmp_path: Path) -> None:
    uri = artifact_uri(app_dir, name="ci", uploads=tmp_path, server_is_local=True,
                       build_args={"GREETING": "hello world", "level": "3"})
    with zipfile.ZipFile(uri.removeprefix("file://")) as z:
        text = z.read("Dockerfile").decode()
        assert z.read("app.py") == b"print('x')\n"
    assert 'ARG GREETING="hello world"\n' in text and "arg  level=3\n" in text


def test_an_undeclared_build_arg_is_refused(app_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="build arg NOPE is not declared"):
        artifact_uri(app_dir, name="ci", uploads=tmp_path, server_is_local=True, build_args={"NOPE": "1"})


def test_a_zip_is_copied_and_a_uri_passed_through(app_dir: Path, tmp_path: Path) -> None:
    from ember.images.artifact import make_zip

    z = make_zip(app_dir, tmp_path / "in.zip")
    copied = artifact_uri(z, name="ci", uploads=tmp_path / "up", server_is_local=True)
    assert Path(copied.removeprefix("file://")).read_bytes() == z.read_bytes()
    assert artifact_uri("s3://bucket/key.zip", name="ci", uploads=tmp_path, server_is_local=False) == (
        "s3://bucket/key.zip")


def test_a_local_folder_needs_a_local_server(app_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="not on this machine"):
        artifact_uri(app_dir, name="ci", uploads=tmp_path, server_is_local=False)
    with pytest.raises(errors.ConfigurationError, match="does not exist"):
        artifact_uri(tmp_path / "missing", name="ci", uploads=tmp_path, server_is_local=True)


def test_build_creates_a_missing_image_and_updates_an_existing_one(server: FakeServer, client: Client,
                                                                   app_dir: Path) -> None:
    server.route("GET", "/2025-09-09/microvm-images/ci", [Reply(404, {"message": "no image ci"},
                                                                {"x-amzn-ErrorType": "ResourceNotFoundException"}),
                                                          Reply(200, samples.image())])
    server.route("POST", "/2025-09-09/microvm-images", Reply(201, samples.created()))
    server.route("PUT", "/2025-09-09/microvm-images/ci", Reply(200, {**samples.created(v="2"), "updatedAt": 1.0}))
    first = client.images.build("ci", app_dir, hooks=["ready", "run"], memory_mib=1024, tags={"team": "a"})
    second = client.images.build("ci", app_dir, hooks=["ready", "run"], memory_mib=1024, tags={"team": "a"})
    assert (first.imageVersion, second.imageVersion) == ("1", "2")
    create, update = (r.json() for r in server.requests if r.method in ("POST", "PUT"))
    assert create["name"] == "ci" and create["tags"] == {"team": "a"}
    assert "name" not in update and "tags" not in update  # create-only members (CONTRACT §1.4)
    assert update["hooks"] == create["hooks"] == {"port": 8080, "microvmImageHooks": {"ready": "ENABLED"},
                                                  "microvmHooks": {"run": "ENABLED"}}
    assert create["codeArtifact"]["uri"].startswith("file://")
