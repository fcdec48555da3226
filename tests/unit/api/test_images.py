"""Image operations through boto3: create (201), update (new version), get, list, delete, and what is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ember.api.context import Quotas
from ember.store import builds, images, versions
from tests.unit.api.conftest import ACCOUNT_A, PYTHON_BASE, REGION, ROLE, Api, image_request, send

ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:microvm-image:app"


def test_create_answers_201_with_the_config_echoed_and_schedules_one_build(api: Api) -> None:
    api.images.auto_succeed = False
    created = api.create_image("app", environmentVariables={"A": "1"}, tags={"team": "x"}, description="d")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["imageArn"] == ARN
    assert (created["name"], created["state"], created["imageVersion"]) == ("app", "CREATING", "1")
    assert created["baseImageArn"] == PYTHON_BASE
    assert created["environmentVariables"] == {"A": "1"}
    assert created["hooks"]["microvmHooks"] == {"run": "ENABLED"}
    assert created["tags"] == {"team": "x"}
    assert len(api.images.scheduled) == 1
    with api.store.read() as session:
        version = versions.get_version(session, images.get_image(session, ACCOUNT_A, "app"), "1")
        build = builds.list_builds(session, version).items[0]
    assert build.build_id == api.images.scheduled[0]
    assert build.architecture == "X86_64"


def test_build_outcome_shows_on_the_image(api: Api) -> None:
    api.images.auto_succeed = False
    api.create_image("app")
    api.images.finish(api.images.scheduled[0], ok=True)
    image = api.client.get_microvm_image(imageIdentifier="app")
    assert (image["state"], image["latestActiveImageVersion"]) == ("CREATED", "1")
    api.client.update_microvm_image(imageIdentifier="app", **_update_body())
    api.images.finish(api.images.scheduled[1], ok=False)
    image = api.client.get_microvm_image(imageIdentifier=ARN)
    assert (image["state"], image["latestActiveImageVersion"], image["latestFailedImageVersion"]) == (
        "UPDATE_FAILED",
        "1",
        "2",
    )


def _update_body() -> dict[str, object]:
    body = image_request("ignored")
    body.pop("name")
    return body


def test_update_makes_a_new_version_and_build(api: Api) -> None:
    api.create_image("app")
    updated = api.client.update_microvm_image(imageIdentifier="app", **_update_body(), environmentVariables={"B": "2"})
    assert (updated["imageVersion"], updated["state"]) == ("2", "UPDATING")
    assert updated["environmentVariables"] == {"B": "2"}
    assert "updatedAt" in updated
    assert len(api.images.scheduled) == 2
    versions_ = api.client.list_microvm_image_versions(imageIdentifier="app")["items"]
    assert [v["imageVersion"] for v in versions_] == ["1", "2"]


def test_update_refuses_name_and_tags(api: Api) -> None:
    api.create_image("app")
    for member in ("name", "tags"):
        body = {**_update_body(), member: "app" if member == "name" else {"a": "b"}}
        response = send(api, "PUT", "/2025-09-09/microvm-images/app", body)
        assert (response.status, response.code) == (400, "ValidationException")
        assert response.json()["message"].startswith(f"{member}: UpdateMicrovmImage does not accept it")


def test_update_while_a_version_builds_is_a_conflict(api: Api) -> None:
    api.images.auto_succeed = False
    api.create_image("app")
    with pytest.raises(api.client.exceptions.ConflictException, match="is building version 1"):
        api.client.update_microvm_image(imageIdentifier="app", **_update_body())


def test_update_of_an_unknown_image_is_resource_not_found(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.update_microvm_image(imageIdentifier="nope", **_update_body())


def test_amazon_linux_base_is_refused_naming_what_is_available(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ValidationException) as e:
        api.create_image("app", baseImageArn=f"arn:aws:lambda:{REGION}:aws:microvm-image:al2023-1")
    message = e.value.response["Error"]["Message"]
    assert message.startswith("baseImageArn: 'al2023-1' (Amazon Linux 2023) is not available in Ember")
    assert PYTHON_BASE in message and "debian-bookworm" in message


def test_unknown_base_and_base_version_are_refused(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ValidationException, match="not a managed base image Ember offers"):
        api.create_image("app", baseImageArn=f"arn:aws:lambda:{REGION}:aws:microvm-image:ubuntu")
    with pytest.raises(api.client.exceptions.ValidationException, match=r"baseImageVersion: '9' is not a version"):
        api.create_image("app", baseImageVersion="9")
    assert api.create_image("ok", baseImageVersion="latest")["name"] == "ok"


def test_arm64_is_refused_naming_the_hosts_architecture(api: Api) -> None:
    with pytest.raises(
        api.client.exceptions.ValidationException,
        match=r"cpuConfigurations\[0\].architecture: ARM_64 is not available .*available: X86_64",
    ):
        api.create_image("app", cpuConfigurations=[{"architecture": "ARM_64"}])
    assert api.create_image("x86", cpuConfigurations=[{"architecture": "X86_64"}])["name"] == "x86"


def test_arm64_is_built_for_the_host_when_the_server_maps_it(make_api: Callable[..., Api]) -> None:
    api = make_api(map_arm64=True)
    created = api.create_image("app", cpuConfigurations=[{"architecture": "ARM_64"}])
    assert created["cpuConfigurations"] == [{"architecture": "ARM_64"}]
    builds_ = api.client.list_microvm_image_builds(imageIdentifier="app", imageVersion="1")["items"]
    assert [b["architecture"] for b in builds_] == ["X86_64"]


def test_missing_required_field_is_named(api: Api) -> None:
    response = send(
        api,
        "POST",
        "/2025-09-09/microvm-images",
        {"name": "app", "baseImageArn": PYTHON_BASE, "codeArtifact": {"uri": "file:///a.zip"}},
    )
    assert response.status == 400
    assert response.json()["message"] == "buildRoleArn: required field is missing"


def test_duplicate_name_is_a_conflict(api: Api) -> None:
    api.create_image("app")
    with pytest.raises(api.client.exceptions.ConflictException, match="already exists"):
        api.create_image("app")


def test_client_token_replay_of_create_returns_the_first_result(api: Api) -> None:
    first = api.create_image("app", clientToken="c1")
    again = api.create_image("app", clientToken="c1")
    assert (again["imageArn"], again["imageVersion"]) == (first["imageArn"], first["imageVersion"])
    assert len(api.images.scheduled) == 1
    with pytest.raises(api.client.exceptions.ConflictException, match="clientToken was used with different"):
        api.create_image("other", clientToken="c1")


def test_image_count_quota_is_402(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=Quotas(max_images=1))
    api.create_image("one")
    with pytest.raises(api.client.exceptions.ServiceQuotaExceededException, match="the maximum is 1") as e:
        api.create_image("two")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402


def test_get_and_list_images(api: Api) -> None:
    api.create_image("alpha", tags={"k": "v"})
    api.create_image("beta")
    got = api.client.get_microvm_image(imageIdentifier="alpha")
    assert got["tags"] == {"k": "v"} and "baseImageArn" not in got
    assert [i["name"] for i in api.client.list_microvm_images()["items"]] == ["alpha", "beta"]
    assert [i["name"] for i in api.client.list_microvm_images(nameFilter="et")["items"]] == ["beta"]
    page = api.client.list_microvm_images(maxResults=1)
    assert len(page["items"]) == 1 and page["nextToken"]
    rest = api.client.list_microvm_images(maxResults=1, nextToken=page["nextToken"])
    assert [i["name"] for i in rest["items"]] == ["beta"] and "nextToken" not in rest


def test_bad_page_size_and_token_are_validation_errors(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ValidationException, match="maxResults: 51 is greater than the maximum"):
        api.client.list_microvm_images(maxResults=51)
    with pytest.raises(api.client.exceptions.ValidationException, match="nextToken"):
        api.client.list_microvm_images(nextToken="garbage")


def test_delete_is_idempotent_and_frees_the_name(api: Api) -> None:
    api.create_image("app")
    deleted = api.client.delete_microvm_image(imageIdentifier="app")
    assert (deleted["imageIdentifier"], deleted["state"]) == ("app", "DELETED")
    assert api.client.delete_microvm_image(imageIdentifier="app")["state"] == "DELETED"
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.get_microvm_image(imageIdentifier="app")
    assert api.create_image("app")["imageVersion"] == "1"
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.delete_microvm_image(imageIdentifier="never")


def test_delete_removes_the_version_files(api: Api) -> None:
    api.create_image("app")
    with api.store.read() as session:
        image = images.get_image(session, ACCOUNT_A, "app")
        directory = api.images.version_dir(image, versions.get_version(session, image, "1"))
    directory.mkdir(parents=True)
    (directory / "mem.snap").write_bytes(b"x")
    api.client.delete_microvm_image(imageIdentifier="app")
    assert not directory.exists()


def test_delete_while_building_or_with_live_microvms_is_a_conflict(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    with pytest.raises(api.client.exceptions.ConflictException, match="1 MicroVMs that are not TERMINATED"):
        api.client.delete_microvm_image(imageIdentifier="app")
    api.client.terminate_microvm(microvmIdentifier=vm_id)
    api.images.auto_succeed = False
    api.client.update_microvm_image(imageIdentifier="app", **_update_body())
    with pytest.raises(api.client.exceptions.ConflictException, match="is building version 2"):
        api.client.delete_microvm_image(imageIdentifier="app")


def test_role_arn_pattern_is_enforced(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ValidationException, match="buildRoleArn"):
        api.create_image("app", buildRoleArn="role/build")
    assert ROLE.startswith("arn:aws:iam::")
