"""The SDK's errors: what went wrong talking to Ember, one class per contract error code.

::

    SdkError                               (an ember.errors.EmberError)
    ├── ConfigurationError                 no credentials, a bad endpoint, an artifact the server cannot read
    ├── ConnectionFailed                   the API or the gateway could not be reached (refused, TLS, timeout)
    ├── WaitTimeout                        a wait_for_* ran out of time (carries the last state seen)
    ├── WaitFailed                         what was waited for ended badly (build FAILED, VM TERMINATED)
    └── ApiError                           the API answered with an error: code, status, message, request id
        ├── ValidationException            400  a field is missing, malformed or out of bounds
        ├── AccessDeniedException          403  bad credentials or signature
        ├── ResourceNotFoundException      404  no such resource in this account
        ├── ConflictException              409  the resource's state forbids the call
        ├── ServiceQuotaExceededException  402  a capacity quota is used up
        ├── ThrottlingException            429  too many calls per second (``retry_after``)
        ├── InternalServerException        500  Ember failed
        ├── InsufficientCapacityException  503  no capacity to run a MicroVM now
        └── InvalidParameterValueException, ResourceConflictException, TooManyRequestsException,
            ServiceException               the tag API's Lambda-classic codes

The class names are the wire codes of CONTRACT.md §1.5 (``ember.contract.ERROR_TYPES``), so
``except ResourceNotFoundException`` reads the same here as with boto3. A code the SDK does not know
still becomes an ``ApiError`` with that ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from ember.errors import EmberError

ERROR_TYPE_HEADER = "x-amzn-ErrorType"
REQUEST_ID_HEADERS = ("x-amzn-RequestId", "x-amz-request-id")


class SdkError(EmberError):
    """Base of every error the SDK raises."""


class ConfigurationError(SdkError):
    """The client is not set up to make this call (no credentials, bad endpoint, unreachable artifact)."""


class ConnectionFailed(SdkError):
    """The API or a MicroVM endpoint could not be reached: connection refused, TLS failure or timeout."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class WaitTimeout(SdkError):
    """A ``wait_for_*`` call ran out of time; ``last`` is the last thing it saw (a response model or None)."""

    def __init__(self, message: str, *, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


class WaitFailed(SdkError):
    """What was waited for ended in a failure state (a build FAILED, a MicroVM TERMINATED); ``last`` says how."""

    def __init__(self, message: str, *, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


class ApiError(SdkError):
    """The control-plane API answered with an error.

    ``code`` is the wire code (``x-amzn-ErrorType``), ``status`` the HTTP status, ``message`` the server's
    message, ``request_id`` the server's request id when it sent one, ``body`` the decoded JSON body
    (``resourceId``, ``quotaCode``...) and ``retry_after`` the ``Retry-After`` header in seconds.
    """

    code: ClassVar[str] = "ApiError"
    default_status: ClassVar[int] = 500

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 request_id: str | None = None, body: Mapping[str, Any] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]  # an unknown code on the generic class
        self.status = status if status is not None else self.default_status
        self.request_id = request_id
        self.body: dict[str, Any] = dict(body or {})
        self.retry_after = retry_after

    @property
    def resource_id(self) -> str | None:
        """The ``resourceId`` the error names, when the server sent one."""
        value = self.body.get("resourceId")
        return value if isinstance(value, str) else None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class ValidationException(ApiError):
    """A request field is missing, malformed or out of bounds; the message names the field and the bound."""

    code = "ValidationException"
    default_status = 400


class AccessDeniedException(ApiError):
    """The credentials were refused: unknown access key, bad signature, or a forbidden action."""

    code = "AccessDeniedException"
    default_status = 403


class ResourceNotFoundException(ApiError):
    """No resource with that identifier exists in the caller's account."""

    code = "ResourceNotFoundException"
    default_status = 404


class ConflictException(ApiError):
    """The resource's current state forbids the call (e.g. suspending a TERMINATED MicroVM)."""

    code = "ConflictException"
    default_status = 409


class ServiceQuotaExceededException(ApiError):
    """A capacity quota (total MicroVM memory, image count) is used up."""

    code = "ServiceQuotaExceededException"
    default_status = 402


class ThrottlingException(ApiError):
    """Too many calls per second to one operation; retry after ``retry_after`` seconds."""

    code = "ThrottlingException"
    default_status = 429


class InternalServerException(ApiError):
    """Ember failed while handling the call; it may be retried."""

    code = "InternalServerException"
    default_status = 500


class InsufficientCapacityException(ApiError):
    """No host can take the MicroVM right now; retry later."""

    code = "InsufficientCapacityException"
    default_status = 503


class InvalidParameterValueException(ApiError):
    """Tag API: a parameter is malformed."""

    code = "InvalidParameterValueException"
    default_status = 400


class ResourceConflictException(ApiError):
    """Tag API: the resource is being changed by another call."""

    code = "ResourceConflictException"
    default_status = 409


class TooManyRequestsException(ApiError):
    """Tag API: too many calls per second."""

    code = "TooManyRequestsException"
    default_status = 429


class ServiceException(ApiError):
    """Tag API: Ember failed while handling the call."""

    code = "ServiceException"
    default_status = 500


ERROR_CLASSES: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        ValidationException,
        AccessDeniedException,
        ResourceNotFoundException,
        ConflictException,
        ServiceQuotaExceededException,
        ThrottlingException,
        InternalServerException,
        InsufficientCapacityException,
        InvalidParameterValueException,
        ResourceConflictException,
        TooManyRequestsException,
        ServiceException,
    )
}
"""Every known error class by its wire code."""

_STATUS_FALLBACK: dict[int, type[ApiError]] = {
    400: ValidationException,
    402: ServiceQuotaExceededException,
    403: AccessDeniedException,
    404: ResourceNotFoundException,
    409: ConflictException,
    429: ThrottlingException,
    500: InternalServerException,
    503: InsufficientCapacityException,
}
"""When a response names no code (a proxy in between, a crash), the status picks the class."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (only the delta-seconds form; an HTTP date is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def error_from_response(status: int, headers: Mapping[str, str], content: bytes) -> ApiError:
    """The typed error for an error response, read the way botocore's rest-json parser reads it.

    The code comes from ``x-amzn-ErrorType`` (anything after ``:`` dropped), else the body's ``__type``
    or ``code``, else the status; the message from the body's ``message`` (or ``Message``).
    """
    body: dict[str, Any] = {}
    if content:
        try:
            decoded = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            decoded = None
        if isinstance(decoded, dict):
            body = decoded
    code = _header(headers, ERROR_TYPE_HEADER) or body.get("__type") or body.get("code") or ""
    code = str(code).split(":", 1)[0].rsplit("#", 1)[-1].strip()
    message = body.get("message") or body.get("Message")
    if not isinstance(message, str):
        text = content.decode("utf-8", "replace").strip() if content and not body else ""
        message = text[:500] or f"HTTP {status}"
    request_id = next((v for v in (_header(headers, n) for n in REQUEST_ID_HEADERS) if v), None)
    retry_after = parse_retry_after(_header(headers, "Retry-After"))
    cls = ERROR_CLASSES.get(code) or (None if code else _STATUS_FALLBACK.get(status)) or ApiError
    unknown_code = (code or None) if cls is ApiError else None
    return cls(message, code=unknown_code, status=status, request_id=request_id, body=body, retry_after=retry_after)


__all__ = [
    "ERROR_CLASSES",
    "AccessDeniedException",
    "ApiError",
    "ConfigurationError",
    "ConflictException",
    "ConnectionFailed",
    "InsufficientCapacityException",
    "InternalServerException",
    "InvalidParameterValueException",
    "ResourceConflictException",
    "ResourceNotFoundException",
    "SdkError",
    "ServiceException",
    "ServiceQuotaExceededException",
    "ThrottlingException",
    "TooManyRequestsException",
    "ValidationException",
    "WaitFailed",
    "WaitTimeout",
    "error_from_response",
    "parse_retry_after",
]
