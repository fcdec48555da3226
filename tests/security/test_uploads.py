"""Filling the server's disk with uploads: the per-account artifact storage quota, on and off.

Account B uploads a zip that would take its stored artifacts past a storage bound lowered for the test
(a setting, like an operator's); the refusal must leave nothing behind. With the quota check switched off
(``UploadQuotas._check_bytes`` replaced on the running server's instance) the same upload is kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from ember.api.upload_quotas import UPLOAD_QUOTAS, UploadQuotas
from ember.sdk.errors import ServiceQuotaExceededException
from tests.framework.server import upload_artifact
from tests.security.conftest import World

pytestmark = pytest.mark.vm

ZIP_BYTES = 2 << 20


def upload_quotas(world: World) -> UploadQuotas:
    runner = world.serve.server._runners[0]  # the API's runner: the first one the server starts
    return runner.app[UPLOAD_QUOTAS]  # type: ignore[attr-defined, no-any-return]


def folder_of(world: World) -> Path:
    return world.serve.server.settings.home / "artifacts" / world.b.account_id


def stored_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir()) if folder.is_dir() else 0


def big_zip(tmp_path: Path) -> Path:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("Dockerfile", "FROM python:3.11-slim\n")
        z.writestr("noise.bin", os.urandom(ZIP_BYTES))
    return path


def lower_the_bound(world: World, monkeypatch: pytest.MonkeyPatch) -> int:
    quotas = upload_quotas(world)
    bound = stored_bytes(folder_of(world)) + (1 << 20)
    monkeypatch.setattr(quotas, "limits", dataclasses.replace(quotas.limits, max_artifact_storage_bytes=bound))
    return bound


def test_an_upload_past_the_accounts_storage_quota_is_refused_and_leaves_nothing(
        world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lower_the_bound(world, monkeypatch)
    before = sorted(p.name for p in folder_of(world).iterdir())
    with pytest.raises(ServiceQuotaExceededException) as info:
        upload_artifact(world.api_url, *world.b.key, big_zip(tmp_path))
    assert info.value.status == 402
    assert "uploaded code artifacts" in str(info.value) and "more than the maximum" in str(info.value)
    assert info.value.body.get("quotaCode") == "ember-max-artifact-storage-bytes"
    assert sorted(p.name for p in folder_of(world).iterdir()) == before  # no zip, no temp file


def test_with_the_storage_quota_off_the_same_upload_is_kept(
        world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lower_the_bound(world, monkeypatch)
    monkeypatch.setattr(upload_quotas(world), "_check_bytes", lambda *args, **kwargs: None)
    path = big_zip(tmp_path)
    uri = upload_artifact(world.api_url, *world.b.key, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        assert uri.endswith(f"/{digest}.zip")
        assert (folder_of(world) / f"{digest}.zip").stat().st_size == path.stat().st_size
    finally:
        assert world.api("DELETE", f"/ember/artifacts/{digest}", key=world.b.key).status == 204
