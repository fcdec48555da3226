"""The error table: every Ember error category maps to one contract error, and the tag API's classic names."""

from __future__ import annotations

import json

import pytest

from ember.api.errors import IDEMPOTENCY_MISMATCH_MESSAGE, classic_error, error_response, to_api_error
from ember.contract.errors import (
    AccessDeniedException,
    ApiError,
    ConflictException,
    InsufficientCapacityException,
    InternalServerException,
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
    ServiceException,
    ThrottlingException,
    TooManyRequestsException,
    ValidationException,
)
from ember.errors import CapacityError, InvalidInput, NotFound, StateConflict, VmmError
from ember.store.errors import IdempotencyMismatch, IllegalTransition, NameTaken, RecordNotFound


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ValidationException("x: y"), ValidationException),
        (AccessDeniedException("no"), AccessDeniedException),
        (RecordNotFound("Microvm", "mvm-1"), ResourceNotFoundException),
        (IllegalTransition("mvm-1", "PENDING", "SUSPENDING"), ConflictException),
        (NameTaken("app"), ConflictException),
        (IdempotencyMismatch("RunMicrovm", "t"), ConflictException),
        (InvalidInput("maxResults", "0 is less than the minimum 1"), ValidationException),
        (StateConflict("busy"), ConflictException),
        (NotFound("gone"), ResourceNotFoundException),
        (CapacityError("no memory"), InsufficientCapacityException),
        (VmmError("qemu died"), InternalServerException),
        (KeyError("x"), InternalServerException),
    ],
)
def test_each_category_maps_to_one_contract_error(raised: Exception, expected: type[ApiError]) -> None:
    assert type(to_api_error(raised)) is expected


def test_not_found_carries_resource_type_and_id() -> None:
    error = to_api_error(RecordNotFound("Microvm", "mvm-1"))
    assert error.to_body() == {
        "message": "Microvm mvm-1 was not found",
        "resourceId": "mvm-1",
        "resourceType": "Microvm",
    }


def test_idempotency_mismatch_uses_the_quoted_wording() -> None:
    error = to_api_error(IdempotencyMismatch("RunMicrovm", "tok"))
    assert error.message.startswith(IDEMPOTENCY_MISMATCH_MESSAGE)
    assert error.resource_id == "tok"


def test_invalid_input_keeps_its_field() -> None:
    error = to_api_error(InvalidInput("nextToken", "is not a token returned by this list operation"))
    assert error.message == "nextToken: is not a token returned by this list operation"
    assert error.field == "nextToken"  # type: ignore[attr-defined]


def test_internal_errors_do_not_leak_the_message() -> None:
    assert "secret" not in to_api_error(RuntimeError("secret")).message


@pytest.mark.parametrize(
    ("error", "classic"),
    [
        (ValidationException("m"), InvalidParameterValueException),
        (ConflictException("m"), ResourceConflictException),
        (ThrottlingException("m", retry_after_seconds=3), TooManyRequestsException),
        (InternalServerException("m"), ServiceException),
        (ResourceNotFoundException("m"), ResourceNotFoundException),
    ],
)
def test_tag_api_uses_classic_names(error: ApiError, classic: type[ApiError]) -> None:
    converted = classic_error(error)
    assert type(converted) is classic
    assert converted.message == "m"


def test_error_response_has_the_type_header_retry_after_and_json_body() -> None:
    response = error_response(ThrottlingException("slow down", retry_after_seconds=2), "req-1")
    assert response.status == 429
    assert response.headers["x-amzn-ErrorType"] == "ThrottlingException"
    assert response.headers["Retry-After"] == "2"
    assert response.headers["x-amzn-RequestId"] == "req-1"
    assert json.loads(response.body) == {"message": "slow down", "serviceCode": "lambda"}  # type: ignore[arg-type]
