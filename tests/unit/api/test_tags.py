"""The tag API on image ARNs, with Lambda-classic error names."""

from __future__ import annotations

import pytest

from ember.contract.enums import ImageState
from ember.store import images
from tests.unit.api.conftest import ACCOUNT_A, ACCOUNT_B, REGION, Api, send

ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:microvm-image:app"


def test_tag_list_untag(api: Api) -> None:
    api.create_image("app", tags={"a": "1"})
    assert api.client.list_tags(Resource=ARN)["Tags"] == {"a": "1"}
    response = api.client.tag_resource(Resource=ARN, Tags={"b": "2", "a": "3"})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert api.client.list_tags(Resource=ARN)["Tags"] == {"a": "3", "b": "2"}
    assert api.client.untag_resource(Resource=ARN, TagKeys=["a", "zzz"])["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert api.client.list_tags(Resource=ARN)["Tags"] == {"b": "2"}
    assert api.client.get_microvm_image(imageIdentifier="app")["tags"] == {"b": "2"}


def test_microvm_arns_are_not_taggable(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    with pytest.raises(api.client.exceptions.InvalidParameterValueException, match="not a taggable resource") as e:
        api.client.list_tags(Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:microvm:{vm_id}")
    assert e.value.response["Type"] == "User"


def test_other_accounts_and_unknown_resources_are_not_found(api: Api) -> None:
    api.create_image("app")
    with pytest.raises(api.client_b.exceptions.ResourceNotFoundException):
        api.client_b.list_tags(Resource=ARN)
    with pytest.raises(api.client_b.exceptions.ResourceNotFoundException):
        api.client_b.tag_resource(Resource=ARN, Tags={"x": "y"})
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.list_tags(Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:function:f")
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.list_tags(Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT_B}:microvm-image:app")
    assert api.client.list_tags(Resource=ARN).get("Tags") == {}


def test_bad_tags_are_invalid_parameter_values(api: Api) -> None:
    api.create_image("app")
    with pytest.raises(api.client.exceptions.InvalidParameterValueException, match="Tags"):
        api.client.tag_resource(Resource=ARN, Tags={"bad#key": "v"})
    with pytest.raises(api.client.exceptions.InvalidParameterValueException, match="more than the maximum 50"):
        api.client.tag_resource(Resource=ARN, Tags={f"k{i}": "v" for i in range(51)})


def test_tagging_an_image_being_deleted_is_a_resource_conflict(api: Api) -> None:
    api.create_image("app")
    with api.store.write() as session:
        images.set_image_state(session, images.get_image(session, ACCOUNT_A, "app"), ImageState.DELETING)
    with pytest.raises(api.client.exceptions.ResourceConflictException, match="DELETING"):
        api.client.tag_resource(Resource=ARN, Tags={"a": "b"})


def test_tag_api_failures_are_service_exceptions(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api.create_image("app")

    def boom(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("ember.api.tags.tags.untag_resource", boom)
    with pytest.raises(api.client.exceptions.ServiceException) as e:
        api.client.untag_resource(Resource=ARN, TagKeys=["a"])
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert e.value.response["Type"] == "Service"
    assert "disk on fire" not in str(e.value.response)


def test_untag_without_keys_is_an_invalid_parameter(api: Api) -> None:
    api.create_image("app")
    response = send(api, "DELETE", f"/2017-03-31/tags/{ARN}")
    assert (response.status, response.code) == (400, "InvalidParameterValueException")
    assert response.json()["message"] == "TagKeys: required field is missing"
