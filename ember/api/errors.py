"""The one table that turns what a handler raised into a contract error, and that error into an HTTP response.

::

    raised                                   answered
    ApiError (any contract error)            itself
    store IdempotencyMismatch                ConflictException  "clientToken was used with different request parameters"
    store RecordNotFound                     ResourceNotFoundException (resourceType, resourceId)
    store IllegalTransition, NameTaken       ConflictException (resourceType, resourceId)
    ember.errors.InvalidInput                ValidationException (the message names the field and the bound)
    ember.errors.StateConflict               ConflictException
    ember.errors.NotFound                    ResourceNotFoundException
    ember.errors.CapacityError               InsufficientCapacityException (503, Retry-After)
    anything else                            InternalServerException (500; logged, no traceback on the wire)

The tag API (``/2017-03-31/tags/...``) speaks Lambda-classic errors, so on those routes ValidationException becomes
InvalidParameterValueException, ConflictException ResourceConflictException, ThrottlingException
TooManyRequestsException and InternalServerException ServiceException (``classic_error``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from aiohttp import web

from ember.contract.errors import (
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
from ember.errors import CapacityError, InvalidInput, NotFound, StateConflict
from ember.store.errors import IdempotencyMismatch, IllegalTransition, NameTaken, RecordNotFound

log = logging.getLogger(__name__)

IDEMPOTENCY_MISMATCH_MESSAGE = "clientToken was used with different request parameters"
"""The wording [C] quotes (CONTRACT.md §1.6); clients match on it."""
CAPACITY_RETRY_AFTER_S = 10
"""Retry-After of InsufficientCapacityException: memory frees up as other MicroVMs end."""
REQUEST_ID_HEADER = "x-amzn-RequestId"


class UnknownOperationException(ApiError):
    """No operation has this method and path (botocore shows the code; AWS uses the same name)."""

    code = "UnknownOperationException"
    http_status = 404


class MethodNotAllowedException(ApiError):
    """The path exists but not with this HTTP method."""

    code = "MethodNotAllowedException"
    http_status = 405


class PayloadTooLargeException(ApiError):
    """The request body is larger than the server accepts."""

    code = "RequestEntityTooLargeException"
    http_status = 413


def _idempotency_mismatch(exc: IdempotencyMismatch) -> ApiError:
    return ConflictException(
        f"{IDEMPOTENCY_MISMATCH_MESSAGE}: an earlier {exc.operation} call with clientToken {exc.client_token!r} "
        "had other parameters; send a new clientToken for a new request",
        resource_type=exc.operation,
        resource_id=exc.client_token,
    )


def _not_found(exc: RecordNotFound) -> ApiError:
    return ResourceNotFoundException(str(exc), resource_type=exc.resource_type, resource_id=exc.resource_id)


def _conflict(exc: IllegalTransition | NameTaken) -> ApiError:
    return ConflictException(str(exc), resource_type=exc.resource_type, resource_id=exc.resource_id)


def _invalid(exc: InvalidInput) -> ApiError:
    return ValidationException(str(exc), field=exc.field)


ERROR_TABLE: tuple[tuple[type[BaseException], Callable[..., ApiError]], ...] = (
    (ApiError, lambda exc: exc),
    (IdempotencyMismatch, _idempotency_mismatch),
    (RecordNotFound, _not_found),
    (IllegalTransition, _conflict),
    (NameTaken, _conflict),
    (InvalidInput, _invalid),
    (StateConflict, lambda exc: ConflictException(str(exc))),
    (NotFound, lambda exc: ResourceNotFoundException(str(exc))),
    (CapacityError, lambda exc: InsufficientCapacityException(str(exc), retry_after_seconds=CAPACITY_RETRY_AFTER_S)),
)
"""First match wins, so subclasses come before their bases."""

CLASSIC_ERRORS: dict[type[ApiError], Callable[[ApiError], ApiError]] = {
    ValidationException: lambda e: InvalidParameterValueException(e.message, field=getattr(e, "field", None)),
    ConflictException: lambda e: ResourceConflictException(e.message),
    ThrottlingException: lambda e: TooManyRequestsException(e.message, retry_after_seconds=e.retry_after_seconds),
    InternalServerException: lambda e: ServiceException(e.message),
}
"""How the tag API renames the 2025-09-09 errors (CONTRACT.md §1.4)."""


def to_api_error(exc: BaseException) -> ApiError:
    """The contract error for ``exc`` per ``ERROR_TABLE``; unexpected errors become InternalServerException."""
    for exc_type, convert in ERROR_TABLE:
        if isinstance(exc, exc_type):
            return convert(exc)
    return InternalServerException("Ember failed while handling the request; it was logged. Retry the call.")


def classic_error(error: ApiError) -> ApiError:
    """``error`` as the tag API's Lambda-classic error type (unchanged if it has no classic counterpart)."""
    convert = CLASSIC_ERRORS.get(type(error))
    return convert(error) if convert is not None else error


def error_response(error: ApiError, request_id: str | None = None) -> web.Response:
    """The wire form botocore parses: status, ``x-amzn-ErrorType``, ``Retry-After``, JSON body with ``message``."""
    headers = dict(error.to_headers())
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return web.Response(
        status=error.http_status,
        body=json.dumps(error.to_body()).encode(),
        content_type="application/json",
        headers=headers,
    )
