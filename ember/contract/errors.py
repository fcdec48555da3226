"""The API's error types (CONTRACT.md §1.5) as exceptions, and the wire form botocore's rest-json parser reads.

::

    ApiError                              code = the wire name, http_status = the response status
    ├── ValidationException               400  a field is missing, malformed or out of bounds (message names it)
    ├── AccessDeniedException             403  bad credentials or signature
    ├── ResourceNotFoundException         404  no such resource in the caller's account
    ├── ConflictException                 409  the resource's state forbids the call
    ├── ServiceQuotaExceededException     402  a capacity quota (memory, image count) is used up
    ├── ThrottlingException               429  too many calls per second (Retry-After)
    ├── InternalServerException           500  Ember failed (Retry-After)
    ├── InsufficientCapacityException     503  no host can take the MicroVM now (RunMicrovm)
    └── tag API only (Lambda-classic shapes, body carries ``Type``):
        ├── InvalidParameterValueException   400
        ├── ResourceConflictException        409
        ├── TooManyRequestsException         429
        └── ServiceException                 500

On the wire an error is the status code, the header ``x-amzn-ErrorType: <code>`` (botocore takes the code from it)
and a JSON body with ``message`` plus the shape's other body members (``resourceId``, ``quotaCode``, ...).
``retryAfterSeconds`` travels as the ``Retry-After`` header, as the model's ``location: header`` says.
"""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_TYPE_HEADER = "x-amzn-ErrorType"
RETRY_AFTER_HEADER = "Retry-After"


class ApiError(Exception):
    """Base of the API's error types; ``code`` and ``http_status`` say how it goes on the wire."""

    code: ClassVar[str] = "ApiError"
    http_status: ClassVar[int] = 500
    fault: ClassVar[str] = "User"
    """Lambda-classic ``Type`` body member: "User" for the caller's fault, "Service" for ours (tag API errors)."""
    _typed_body: ClassVar[bool] = False
    """Whether the body carries ``Type`` (the Lambda-classic tag API shapes do)."""

    def __init__(
        self,
        message: str,
        *,
        resource_id: str | None = None,
        resource_type: str | None = None,
        service_code: str | None = None,
        quota_code: str | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.resource_id = resource_id
        self.resource_type = resource_type
        self.service_code = service_code
        self.quota_code = quota_code
        self.retry_after_seconds = retry_after_seconds

    def to_body(self) -> dict[str, Any]:
        """The JSON body: ``message`` plus whichever of the shape's body members are set."""
        body: dict[str, Any] = {}
        if self._typed_body:
            body["Type"] = self.fault
        body["message"] = self.message
        for wire, value in (
            ("resourceId", self.resource_id),
            ("resourceType", self.resource_type),
            ("serviceCode", self.service_code),
            ("quotaCode", self.quota_code),
        ):
            if value is not None:
                body[wire] = value
        return body

    def to_headers(self) -> dict[str, str]:
        """Response headers: ``x-amzn-ErrorType`` always, ``Retry-After`` when a retry delay is known."""
        headers = {ERROR_TYPE_HEADER: self.code}
        if self.retry_after_seconds is not None:
            headers[RETRY_AFTER_HEADER] = str(self.retry_after_seconds)
        return headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ValidationException(ApiError):
    """A request field is missing, malformed or out of bounds; the message names the field and the bound."""

    code = "ValidationException"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @classmethod
    def for_field(cls, field: str, problem: str) -> ValidationException:
        """``<field>: <problem>``, the one message shape every validation error has."""
        return cls(f"{field}: {problem}", field=field)


class AccessDeniedException(ApiError):
    """The caller may not do this: unknown access key, bad signature, or a forbidden action."""

    code = "AccessDeniedException"
    http_status = 403


class ResourceNotFoundException(ApiError):
    """No resource with that identifier exists in the caller's account."""

    code = "ResourceNotFoundException"
    http_status = 404

    def __init__(self, message: str, *, resource_type: str | None = None, resource_id: str | None = None) -> None:
        super().__init__(message, resource_type=resource_type, resource_id=resource_id)


class ConflictException(ApiError):
    """The resource's current state forbids the call (e.g. ResumeMicrovm on a RUNNING MicroVM)."""

    code = "ConflictException"
    http_status = 409

    def __init__(self, message: str, *, resource_type: str | None = None, resource_id: str | None = None) -> None:
        super().__init__(message, resource_type=resource_type, resource_id=resource_id)


class ServiceQuotaExceededException(ApiError):
    """A capacity quota is used up (total MicroVM memory, image count); HTTP 402 as the model says."""

    code = "ServiceQuotaExceededException"
    http_status = 402

    def __init__(
        self,
        message: str,
        *,
        resource_type: str | None = None,
        resource_id: str | None = None,
        service_code: str | None = "lambda",
        quota_code: str | None = None,
    ) -> None:
        super().__init__(
            message,
            resource_type=resource_type,
            resource_id=resource_id,
            service_code=service_code,
            quota_code=quota_code,
        )


class ThrottlingException(ApiError):
    """Too many calls per second to one operation; retry after ``retry_after_seconds``."""

    code = "ThrottlingException"
    http_status = 429

    def __init__(
        self,
        message: str,
        *,
        service_code: str | None = "lambda",
        quota_code: str | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(
            message, service_code=service_code, quota_code=quota_code, retry_after_seconds=retry_after_seconds
        )


class InternalServerException(ApiError):
    """Ember failed while handling the call; the call may be retried."""

    code = "InternalServerException"
    http_status = 500
    fault = "Service"

    def __init__(self, message: str = "internal error", *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)


class InsufficientCapacityException(ApiError):
    """No host can take the MicroVM right now (RunMicrovm); retry later.

    The model revision that has it ([K]) gives no status code; Ember answers 503 so generic clients retry.
    """

    code = "InsufficientCapacityException"
    http_status = 503
    fault = "Service"

    def __init__(self, message: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)


class InvalidParameterValueException(ApiError):
    """Tag API: a parameter is malformed (the tag API's ValidationException)."""

    code = "InvalidParameterValueException"
    http_status = 400
    _typed_body = True

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ResourceConflictException(ApiError):
    """Tag API: the resource is being changed by another call, or is in a state that forbids tagging."""

    code = "ResourceConflictException"
    http_status = 409
    _typed_body = True


class TooManyRequestsException(ApiError):
    """Tag API: too many calls per second."""

    code = "TooManyRequestsException"
    http_status = 429
    _typed_body = True

    def __init__(self, message: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)


class ServiceException(ApiError):
    """Tag API: Ember failed while handling the call."""

    code = "ServiceException"
    http_status = 500
    fault = "Service"
    _typed_body = True


ERROR_TYPES: dict[str, type[ApiError]] = {
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
"""Every error type by its wire code (for clients that turn a response back into an exception)."""
