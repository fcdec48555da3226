"""Image versions and builds through boto3: get, list, status changes, delete; list and get builds."""

from __future__ import annotations

import pytest

from tests.unit.api.conftest import ACCOUNT_A, REGION, Api


def test_get_version_returns_the_full_config_and_state(api: Api) -> None:
    api.create_image("app", tags={"t": "1"}, environmentVariables={"E": "v"})
    version = api.client.get_microvm_image_version(imageIdentifier="app", imageVersion="1")
    assert (version["state"], version["status"]) == ("SUCCESSFUL", "ACTIVE")
    assert version["imageArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:microvm-image:app"
    assert version["environmentVariables"] == {"E": "v"}
    assert version["resources"] == [{"minimumMemoryInMiB": 512}]
    assert version["tags"] == {"t": "1"}


def test_failed_build_shows_its_reason_on_the_version(api: Api) -> None:
    api.images.auto_succeed = False
    api.create_image("app")
    api.images.finish(api.images.scheduled[0], ok=False, reason="step 2/5 RUN pip install: exit status 1")
    version = api.client.get_microvm_image_version(imageIdentifier="app", imageVersion="1")
    assert version["state"] == "FAILED"
    assert "RUN pip install" in version["stateReason"]


def test_unknown_version_is_resource_not_found(api: Api) -> None:
    api.create_image("app")
    with pytest.raises(api.client.exceptions.ResourceNotFoundException) as e:
        api.client.get_microvm_image_version(imageIdentifier="app", imageVersion="7")
    assert e.value.response["resourceType"] == "MicrovmImageVersion"


def test_status_can_block_and_allow_launches(api: Api) -> None:
    api.create_image("app")
    inactive = api.client.update_microvm_image_version(imageIdentifier="app", imageVersion="1", status="INACTIVE")
    assert inactive["status"] == "INACTIVE"
    assert "latestActiveImageVersion" not in api.client.get_microvm_image(imageIdentifier="app")
    api.client.update_microvm_image_version(imageIdentifier="app", imageVersion="1", status="ACTIVE")
    assert api.client.get_microvm_image(imageIdentifier="app")["latestActiveImageVersion"] == "1"


def test_status_of_a_version_that_did_not_build_is_a_conflict(api: Api) -> None:
    api.images.auto_succeed = False
    api.create_image("app")
    with pytest.raises(api.client.exceptions.ConflictException, match="only a SUCCESSFUL version"):
        api.client.update_microvm_image_version(imageIdentifier="app", imageVersion="1", status="ACTIVE")
    with pytest.raises(api.client.exceptions.ValidationException, match="status: 'ON' is not one of ACTIVE, INACTIVE"):
        api.client.update_microvm_image_version(imageIdentifier="app", imageVersion="1", status="ON")


def test_list_versions_pages(api: Api) -> None:
    api.create_image("app")
    body = {
        k: v
        for k, v in api.client.get_microvm_image_version(imageIdentifier="app", imageVersion="1").items()
        if k in ("baseImageArn", "buildRoleArn", "codeArtifact")
    }
    api.client.update_microvm_image(imageIdentifier="app", **body)
    first = api.client.list_microvm_image_versions(imageIdentifier="app", maxResults=1)
    second = api.client.list_microvm_image_versions(imageIdentifier="app", maxResults=1, nextToken=first["nextToken"])
    assert [v["imageVersion"] for v in first["items"] + second["items"]] == ["1", "2"]


def test_delete_version_is_idempotent_and_refused_with_live_microvms(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    with pytest.raises(api.client.exceptions.ConflictException, match="not TERMINATED"):
        api.client.delete_microvm_image_version(imageIdentifier="app", imageVersion="1")
    api.client.terminate_microvm(microvmIdentifier=vm_id)
    deleted = api.client.delete_microvm_image_version(imageIdentifier="app", imageVersion="1")
    assert (deleted["imageIdentifier"], deleted["imageVersion"], deleted["state"]) == ("app", "1", "DELETED")
    assert api.client.delete_microvm_image_version(imageIdentifier="app", imageVersion="1")["state"] == "DELETED"
    assert api.client.list_microvm_image_versions(imageIdentifier="app")["items"] == []
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.delete_microvm_image_version(imageIdentifier="app", imageVersion="9")


def test_delete_of_a_building_version_is_a_conflict(api: Api) -> None:
    api.images.auto_succeed = False
    api.create_image("app")
    with pytest.raises(api.client.exceptions.ConflictException, match="still building"):
        api.client.delete_microvm_image_version(imageIdentifier="app", imageVersion="1")


def test_list_and_get_builds(api: Api) -> None:
    api.create_image("app")
    items = api.client.list_microvm_image_builds(imageIdentifier="app", imageVersion="1")["items"]
    assert len(items) == 1
    build = items[0]
    assert (build["buildState"], build["architecture"], build["imageVersion"]) == ("SUCCESSFUL", "X86_64", "1")
    assert build["chipset"] in ("INTEL", "AMD", "GENERIC") and build["chipsetGeneration"]
    got = api.client.get_microvm_image_build(imageIdentifier="app", imageVersion="1", buildId=build["buildId"])
    assert got["snapshotBuild"]["memorySnapshotSizeInBytes"] == 1 << 20
    filtered = api.client.list_microvm_image_builds(imageIdentifier="app", imageVersion="1", architecture="ARM_64")
    assert filtered["items"] == []
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.get_microvm_image_build(imageIdentifier="app", imageVersion="1", buildId="0" * 32)
