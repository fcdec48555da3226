"""Error types: codes, HTTP statuses, bodies and headers as botocore's rest-json parser reads them."""

from __future__ import annotations

import pytest

import ember.contract as c
from ember.contract.errors import ERROR_TYPE_HEADER, RETRY_AFTER_HEADER

STATUSES = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ServiceQuotaExceededException": 402,
    "ThrottlingException": 429,
    "InternalServerException": 500,
    "InsufficientCapacityException": 503,
    "InvalidParameterValueException": 400,
    "ResourceConflictException": 409,
    "TooManyRequestsException": 429,
    "ServiceException": 500,
}


def test_every_error_type_has_its_code_and_status() -> None:
    assert {code: cls.http_status for code, cls in c.ERROR_TYPES.items()} == STATUSES
    assert all(issubclass(cls, c.ApiError) and cls.code == code for code, cls in c.ERROR_TYPES.items())


@pytest.mark.parametrize("cls", list(c.ERROR_TYPES.values()), ids=list(c.ERROR_TYPES))
def test_error_header_names_the_code_and_body_has_message(cls: type[c.ApiError]) -> None:
    error = cls("what happened")
    assert error.to_headers()[ERROR_TYPE_HEADER] == cls.code
    assert error.to_body()["message"] == "what happened"
    assert str(error) == "what happened"


def test_not_found_body_carries_resource() -> None:
    body = c.ResourceNotFoundException("gone", resource_type="Microvm", resource_id="mvm-1").to_body()
    assert body == {"message": "gone", "resourceId": "mvm-1", "resourceType": "Microvm"}


def test_quota_body_carries_service_and_quota_codes() -> None:
    body = c.ServiceQuotaExceededException("full", quota_code="L-CD1C0CC4").to_body()
    assert body == {"message": "full", "serviceCode": "lambda", "quotaCode": "L-CD1C0CC4"}


def test_retry_after_is_a_header_not_a_body_member() -> None:
    error = c.ThrottlingException("slow", retry_after_seconds=3)
    assert error.to_headers()[RETRY_AFTER_HEADER] == "3"
    assert "retryAfterSeconds" not in error.to_body()
    assert RETRY_AFTER_HEADER not in c.ValidationException("x").to_headers()


def test_tag_api_errors_carry_type() -> None:
    assert c.InvalidParameterValueException("bad").to_body() == {"Type": "User", "message": "bad"}
    assert c.ServiceException("oops").to_body() == {"Type": "Service", "message": "oops"}
    assert "Type" not in c.ValidationException("bad").to_body()


def test_validation_for_field_names_the_field() -> None:
    error = c.ValidationException.for_field("imageVersion", "version 7 does not exist")
    assert error.message == "imageVersion: version 7 does not exist"
    assert error.field == "imageVersion"
