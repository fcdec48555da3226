"""Turning a request body into a contract model, with one clear message per problem.

``parse_request(RunMicrovmRequest, data)`` returns the model or raises the contract's ``ValidationException``
(or another error class, e.g. the tag API's ``InvalidParameterValueException``) whose message names each bad field
and the bound it broke, e.g. ``maximumDurationInSeconds: 40000 is greater than the maximum 28800``. Several
problems are joined with ``"; "`` in the order pydantic found them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from ember.contract.errors import ApiError, InvalidParameterValueException, ValidationException

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_ECHOED_VALUE_CHARS = 64
"""Longer offending values are cut in messages: enough to recognise, never a whole payload."""
MAX_REPORTED_ERRORS = 10
"""A body with more problems reports the first ten (and says how many more)."""


def parse_request(
    model_cls: type[ModelT],
    data: Mapping[str, Any] | None,
    *,
    error_cls: type[ApiError] = ValidationException,
) -> ModelT:
    """Validate ``data`` (merged body, path and query members) into ``model_cls`` or raise ``error_cls``.

    ``data=None`` (no body) is validated as ``{}``. The raised error's message names every bad field and its
    bound; ``ValidationException.field`` / ``InvalidParameterValueException.field`` is the first bad field.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise _make(error_cls, "request body", f"expected a JSON object, got {_type_name(data)}")
    try:
        return model_cls.model_validate(dict(data))
    except PydanticValidationError as exc:
        raise validation_error(exc, error_cls=error_cls) from None


def validation_error(exc: PydanticValidationError, *, error_cls: type[ApiError] = ValidationException) -> ApiError:
    """The contract error for a pydantic ``ValidationError``: every problem as ``field: problem``, joined."""
    details = exc.errors(include_url=False)
    messages: list[str] = []
    for detail in details[:MAX_REPORTED_ERRORS]:
        text = format_error(detail)
        if text not in messages:
            messages.append(text)
    if len(details) > MAX_REPORTED_ERRORS:
        messages.append(f"and {len(details) - MAX_REPORTED_ERRORS} more problems")
    first_field = field_path(details[0]["loc"]) if details else None
    return _make_message(error_cls, "; ".join(messages), first_field)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``('resources', 0, 'minimumMemoryInMiB')`` → ``resources[0].minimumMemoryInMiB``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "request body"


def format_error(detail: ErrorDetails) -> str:
    """One pydantic error as ``field: problem`` naming the bound (see the module docstring)."""
    field = field_path(detail["loc"])
    kind = detail["type"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    value = detail.get("input")
    problem = _PROBLEMS.get(kind)
    if problem is not None:
        return f"{field}: {problem(value, ctx)}"
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error") or detail["msg"])
        return f"{field}: {_strip_prefix(message)}"
    return f"{field}: {detail['msg']}"


def _strip_prefix(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def echo(value: Any) -> str:
    """``value`` as a message shows it: ``repr`` for strings, cut to ``MAX_ECHOED_VALUE_CHARS``."""
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > MAX_ECHOED_VALUE_CHARS:
        text = text[: MAX_ECHOED_VALUE_CHARS - 3] + "..."
    return text


def _type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _length(value: Any, ctx: dict[str, Any]) -> int:
    if "actual_length" in ctx:
        return int(ctx["actual_length"])
    try:
        return len(value)
    except TypeError:
        return 0


def _enum_values(ctx: dict[str, Any]) -> str:
    return ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))


_PROBLEMS: dict[str, Any] = {
    "missing": lambda v, c: "required field is missing",
    "extra_forbidden": lambda v, c: "unknown field: this operation does not accept it",
    "greater_than_equal": lambda v, c: f"{echo(v)} is less than the minimum {c['ge']}",
    "greater_than": lambda v, c: f"{echo(v)} must be greater than {c['gt']}",
    "less_than_equal": lambda v, c: f"{echo(v)} is greater than the maximum {c['le']}",
    "less_than": lambda v, c: f"{echo(v)} must be less than {c['lt']}",
    "string_too_short": lambda v, c: f"length {_length(v, c)} is less than the minimum length {c['min_length']}",
    "string_too_long": lambda v, c: f"length {_length(v, c)} is greater than the maximum length {c['max_length']}",
    "too_short": lambda v, c: f"{_length(v, c)} items is fewer than the minimum {c['min_length']}",
    "too_long": lambda v, c: f"{_length(v, c)} items is more than the maximum {c['max_length']}",
    "string_pattern_mismatch": lambda v, c: (
        "must not be blank" if c["pattern"] == r"\S" else f"{echo(v)} does not match the pattern {c['pattern']}"
    ),
    "enum": lambda v, c: f"{echo(v)} is not one of {_enum_values(c)}",
    "literal_error": lambda v, c: f"{echo(v)} is not one of {_enum_values(c)}",
    "int_parsing": lambda v, c: f"{echo(v)} is not an integer",
    "int_type": lambda v, c: f"expected an integer, got {_type_name(v)}",
    "int_from_float": lambda v, c: f"{echo(v)} is not a whole number",
    "bool_parsing": lambda v, c: f"{echo(v)} is not a boolean",
    "bool_type": lambda v, c: f"expected a boolean, got {_type_name(v)}",
    "string_type": lambda v, c: f"expected a string, got {_type_name(v)}",
    "list_type": lambda v, c: f"expected a list, got {_type_name(v)}",
    "dict_type": lambda v, c: f"expected an object, got {_type_name(v)}",
    "model_type": lambda v, c: f"expected an object, got {_type_name(v)}",
    "model_attributes_type": lambda v, c: f"expected an object, got {_type_name(v)}",
    "datetime_type": lambda v, c: f"expected a timestamp, got {_type_name(v)}",
    "datetime_parsing": lambda v, c: f"{echo(v)} is not a timestamp",
    "datetime_from_date_parsing": lambda v, c: f"{echo(v)} is not a timestamp",
}


def _make(error_cls: type[ApiError], field: str, problem: str) -> ApiError:
    return _make_message(error_cls, f"{field}: {problem}", field)


def _make_message(error_cls: type[ApiError], message: str, field: str | None) -> ApiError:
    if error_cls in (ValidationException, InvalidParameterValueException) or issubclass(
        error_cls, (ValidationException, InvalidParameterValueException)
    ):
        return error_cls(message, field=field)  # type: ignore[call-arg]
    return error_cls(message)
