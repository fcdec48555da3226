"""Image models: Create/Update differences, the disk-size extension, configuration echoed on responses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import ember.contract as c

CONFIG: dict[str, Any] = {
    "baseImageArn": "arn:aws:lambda:us-east-1:aws:microvm-image:python-3.11",
    "buildRoleArn": "arn:aws:iam::123456789012:role/build",
    "codeArtifact": {"uri": "file:///srv/app.zip"},
    "cpuConfigurations": [{"architecture": "X86_64"}, {"architecture": "ARM_64"}],
    "resources": [{"minimumMemoryInMiB": 1024}],
    "hooks": {"port": 9000, "microvmImageHooks": {"ready": "ENABLED", "validate": "DISABLED"}},
    "x-ember-diskSizeInMiB": 4096,
}


def test_create_accepts_both_architectures_and_the_disk_extension() -> None:
    request = c.parse_request(c.CreateMicrovmImageRequest, {**CONFIG, "name": "web", "tags": {"team": "core"}})
    assert [cpu.architecture for cpu in request.cpuConfigurations or []] == [
        c.Architecture.X86_64,
        c.Architecture.ARM_64,
    ]
    assert request.disk_size_mib() == 4096
    assert request.memory_mib() == 1024
    assert request.to_wire()["x-ember-diskSizeInMiB"] == 4096


def test_disk_extension_is_optional_and_settable_by_name() -> None:
    request = c.CreateMicrovmImageRequest.model_validate({**CONFIG, "name": "w", "x-ember-diskSizeInMiB": None})
    assert request.diskSizeInMiB is None
    by_name = c.ImageConfig(**{k: v for k, v in CONFIG.items() if k != "x-ember-diskSizeInMiB"}, diskSizeInMiB=512)
    assert by_name.to_wire()["x-ember-diskSizeInMiB"] == 512


@pytest.mark.parametrize("field", ["name", "tags"])
def test_update_refuses_create_only_fields(field: str) -> None:
    value = "web" if field == "name" else {"a": "b"}
    with pytest.raises(c.ValidationException, match=rf"^{field}: unknown field"):
        c.parse_request(c.UpdateMicrovmImageRequest, {**CONFIG, "imageIdentifier": "web", field: value})


def test_update_requires_the_full_configuration() -> None:
    with pytest.raises(c.ValidationException) as caught:
        c.parse_request(c.UpdateMicrovmImageRequest, {"imageIdentifier": "web"})
    for field in ("baseImageArn", "buildRoleArn", "codeArtifact"):
        assert f"{field}: required field is missing" in caught.value.message


def test_image_config_strips_request_only_members() -> None:
    request = c.parse_request(c.CreateMicrovmImageRequest, {**CONFIG, "name": "web", "clientToken": "t"})
    config = request.image_config()
    assert type(config) is c.ImageConfig
    assert "name" not in config.to_wire() and "clientToken" not in config.to_wire()
    assert config.to_wire()["hooks"]["microvmImageHooks"] == {"ready": "ENABLED", "validate": "DISABLED"}


def test_version_response_echoes_configuration() -> None:
    version = c.MicrovmImageVersion.model_validate(
        {
            **CONFIG,
            "imageArn": c.image_arn("us-east-1", "123456789012", "web"),
            "imageVersion": "2",
            "state": "SUCCESSFUL",
            "status": "ACTIVE",
            "createdAt": datetime(2025, 1, 1, tzinfo=UTC),
        }
    )
    wire = version.to_wire()
    assert wire["createdAt"] == datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    assert wire["resources"] == [{"minimumMemoryInMiB": 1024}]
    assert wire["status"] == "ACTIVE"


def test_build_detail_with_snapshot_sizes() -> None:
    build = c.MicrovmImageBuild(
        imageArn=c.image_arn("us-east-1", "123456789012", "web"),
        imageVersion="1",
        buildId="ab" * 16,
        buildState=c.BuildState.SUCCESSFUL,
        architecture=c.Architecture.X86_64,
        chipset=c.Chipset.GENERIC,
        chipsetGeneration="tcg",
        createdAt=datetime(2025, 1, 1, tzinfo=UTC),
        snapshotBuild=c.SnapshotBuild(memorySnapshotSizeInBytes=93_000_000),
    )
    assert build.to_wire()["snapshotBuild"] == {"memorySnapshotSizeInBytes": 93_000_000}
