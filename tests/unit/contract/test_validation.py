"""parse_request: one ValidationException listing every bad field, and the tag API's own error type."""

from __future__ import annotations

import pytest

import ember.contract as c


def test_several_problems_are_joined_in_one_message() -> None:
    with pytest.raises(c.ValidationException) as caught:
        c.parse_request(c.RunMicrovmRequest, {"maximumDurationInSeconds": 40000, "bogus": 1})
    message = caught.value.message
    assert message.split("; ") == [
        "imageIdentifier: required field is missing",
        "maximumDurationInSeconds: 40000 is greater than the maximum 28800",
        "bogus: unknown field: this operation does not accept it",
    ]
    assert caught.value.field == "imageIdentifier"


def test_body_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(c.ValidationException, match=r"^request body: expected a JSON object, got a list$"):
        c.parse_request(c.RunMicrovmRequest, [1, 2])  # type: ignore[arg-type]


def test_missing_body_is_an_empty_object() -> None:
    assert c.parse_request(c.ListMicrovmsRequest, None) == c.ListMicrovmsRequest()


def test_wrong_types_say_what_was_expected() -> None:
    with pytest.raises(c.ValidationException) as caught:
        c.parse_request(
            c.RunMicrovmRequest,
            {
                "imageIdentifier": 7,
                "maximumDurationInSeconds": "soon",
                "idlePolicy": [],
                "ingressNetworkConnectors": "ALL_INGRESS",
            },
        )
    message = caught.value.message
    assert "imageIdentifier: expected a string, got an integer" in message
    assert "maximumDurationInSeconds: 'soon' is not an integer" in message
    assert "idlePolicy: expected an object, got a list" in message
    assert "ingressNetworkConnectors: expected a list, got a string" in message


def test_enum_errors_list_the_allowed_values() -> None:
    with pytest.raises(c.ValidationException, match=r"status: 'ON' is not one of ACTIVE, INACTIVE"):
        c.parse_request(
            c.UpdateMicrovmImageVersionRequest, {"imageIdentifier": "web", "imageVersion": "1", "status": "ON"}
        )


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(c.ValidationException) as caught:
        c.parse_request(c.RunMicrovmRequest, {"imageIdentifier": "web", "executionRoleArn": "x" * 5000})
    assert len(caught.value.message) < 300


def test_blank_identifiers_are_rejected_as_blank() -> None:
    with pytest.raises(c.ValidationException, match=r"^imageVersion: must not be blank$"):
        c.parse_request(c.GetMicrovmImageVersionRequest, {"imageIdentifier": "web", "imageVersion": "   "})


def test_non_blank_means_not_all_whitespace() -> None:
    model = c.MicrovmDetail.model_validate(
        {
            "microvmId": "mvm-" + "0" * 32,
            "state": "TERMINATED",
            "endpoint": "h:1/microvms/x",
            "imageArn": c.image_arn("us-east-1", "123456789012", "web"),
            "imageVersion": "1",
            "maximumDurationInSeconds": 60,
            "startedAt": 0,
            "stateReason": "run hook returned 500 after 1.2 s",
        }
    )
    assert model.stateReason is not None and " " in model.stateReason


def test_tag_api_errors_use_invalid_parameter_value() -> None:
    with pytest.raises(c.InvalidParameterValueException) as caught:
        c.parse_request(
            c.TagResourceRequest, {"Resource": "nope", "Tags": {}}, error_cls=c.InvalidParameterValueException
        )
    assert caught.value.message.startswith("Resource: 'nope' is not a taggable resource ARN")
    assert caught.value.field == "Resource"
    assert caught.value.to_body()["Type"] == "User"


def test_other_error_classes_get_the_message_only() -> None:
    with pytest.raises(c.ConflictException, match="microvmIdentifier: required field is missing"):
        c.parse_request(c.GetMicrovmRequest, {}, error_cls=c.ConflictException)
