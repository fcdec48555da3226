"""Shapes shared by several operations (CONTRACT.md §1.3): scalar types with their bounds, and small structures.

Patterns: the service model's patterns are Smithy patterns, which are *not* anchored. ``NonBlankString``
(``[^\\s]+``) therefore means "contains a non-space character" (``stateReason`` values contain spaces); where the
contract means the whole value (image names, role ARNs, env var keys, tag keys, log groups) the pattern here is
anchored. Bounds come from ``ember.contract.bounds``.

Union shapes (``Logging``, ``PortSpecification``) require exactly one member, as the model's ``union`` trait says.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, model_validator

from ember.contract import bounds
from ember.contract._base import ApiModel, EmptyModel
from ember.contract.arns import IMAGE_NAME_PATTERN, parse_connector
from ember.contract.enums import EGRESS_CONNECTORS, INGRESS_CONNECTORS, Architecture, HookState
from ember.contract.errors import ValidationException

# --- Scalars -------------------------------------------------------------------------------------------------------
NonBlankString = Annotated[str, StringConstraints(min_length=1, max_length=bounds.MAX_NON_BLANK_CHARS, pattern=r"\S")]
"""``NonBlankString`` / ``Version``: 1-2048 characters, not all whitespace."""
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=bounds.MAX_IDENTIFIER_CHARS)]
"""``MicrovmIdentifier`` / ``MicrovmImageIdentifier``: "ARN or ID", 1-256 characters (parse with ``arns``)."""
ImageName = Annotated[
    str, StringConstraints(min_length=1, max_length=bounds.MAX_IMAGE_NAME_CHARS, pattern=IMAGE_NAME_PATTERN)
]
ImageArnString = Annotated[
    str, StringConstraints(min_length=bounds.MIN_IMAGE_ARN_CHARS, max_length=bounds.MAX_NON_BLANK_CHARS)
]
"""``MicrovmImageArn``: 20-2048 characters."""
ROLE_ARN_PATTERN = r"^arn:aws[a-z\-]*:iam::[0-9]{12}:role/?[a-zA-Z_0-9+=,.@\-/]+$"
RoleArn = Annotated[
    str,
    StringConstraints(
        min_length=bounds.MIN_ROLE_ARN_CHARS, max_length=bounds.MAX_ROLE_ARN_CHARS, pattern=ROLE_ARN_PATTERN
    ),
]
ClientToken = Annotated[
    str, StringConstraints(min_length=bounds.MIN_CLIENT_TOKEN_CHARS, max_length=bounds.MAX_CLIENT_TOKEN_CHARS)
]
MaxResults = Annotated[int, Field(ge=bounds.MIN_MAX_RESULTS, le=bounds.MAX_MAX_RESULTS)]
Port = Annotated[int, Field(ge=bounds.MIN_PORT, le=bounds.MAX_PORT)]
Endpoint = Annotated[str, StringConstraints(min_length=1, max_length=bounds.MAX_NON_BLANK_CHARS)]
NetworkConnector = Annotated[str, StringConstraints(min_length=1, max_length=bounds.MAX_NON_BLANK_CHARS)]


def _connector_checker(allowed: frozenset[str], direction: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            name = parse_connector(value, field="connector")
        except ValidationException as exc:
            raise ValueError(exc.message.removeprefix("connector: ")) from None
        if name not in allowed:
            raise ValueError(f"{name} is not an {direction} connector (use one of {', '.join(sorted(allowed))})")
        return value

    return check


IngressConnector = Annotated[NetworkConnector, AfterValidator(_connector_checker(INGRESS_CONNECTORS, "ingress"))]
"""A managed ingress connector ARN (or bare name): ALL_INGRESS, NO_INGRESS, SHELL_INGRESS."""
EgressConnector = Annotated[NetworkConnector, AfterValidator(_connector_checker(EGRESS_CONNECTORS, "egress"))]
"""A managed egress connector ARN (or bare name): INTERNET_EGRESS."""


# --- String maps ---------------------------------------------------------------------------------------------------
def _no_whitespace(text: str) -> bool:
    return not any(ch.isspace() for ch in text)


def _tag_chars(text: str) -> bool:
    """The model's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``: letters, separators (spaces), numbers and ``_.:/=+-@``."""
    return all(unicodedata.category(ch)[0] in "LZN" or ch in "_.:/=+-@" for ch in text)


def _string_map_validator(
    *,
    min_items: int,
    max_items: int,
    key_max: int,
    value_max: int,
    key_ok: Callable[[str], bool],
    key_rule: str,
    value_ok: Callable[[str], bool] | None = None,
) -> Callable[[Any], dict[str, str]]:
    """A before-validator for a map shape: one message naming the bad key and the bound it broke."""

    def check(value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {type(value).__name__}")
        if len(value) < min_items:
            raise ValueError(f"{len(value)} entries is fewer than the minimum {min_items}")
        if len(value) > max_items:
            raise ValueError(f"{len(value)} entries is more than the maximum {max_items}")
        for key, item in value.items():
            shown = repr(key if len(key) <= 64 else key[:61] + "...")
            if not key:
                raise ValueError("a key is empty (minimum length 1)")
            if len(key) > key_max:
                raise ValueError(f"key {shown} has length {len(key)}, greater than the maximum length {key_max}")
            if not key_ok(key):
                raise ValueError(f"key {shown} {key_rule}")
            if not isinstance(item, str):
                raise ValueError(f"value of {shown} must be a string, got {type(item).__name__}")
            if len(item) > value_max:
                raise ValueError(
                    f"value of {shown} has length {len(item)}, greater than the maximum length {value_max}"
                )
            if value_ok is not None and not value_ok(item):
                raise ValueError(f"value of {shown} {key_rule}")
        return value

    return check


EnvironmentVariables = Annotated[
    dict[str, str],
    BeforeValidator(
        _string_map_validator(
            min_items=0,
            max_items=bounds.MAX_ENV_VARS_ITEMS,
            key_max=bounds.MAX_ENV_KEY_CHARS,
            value_max=bounds.MAX_ENV_VALUE_CHARS,
            key_ok=_no_whitespace,
            key_rule="contains whitespace",
        )
    ),
]
"""``EnvironmentVariableMap``: ≤50 entries, key 1-256 without whitespace, value ≤4096."""

TAG_CHARS_RULE = "may contain only letters, digits, spaces and _.:/=+-@"
Tags = Annotated[
    dict[str, str],
    BeforeValidator(
        _string_map_validator(
            min_items=0,
            max_items=bounds.MAX_TAGS_ITEMS,
            key_max=bounds.MAX_TAG_KEY_CHARS,
            value_max=bounds.MAX_TAG_VALUE_CHARS,
            key_ok=_tag_chars,
            key_rule=TAG_CHARS_RULE,
            value_ok=_tag_chars,
        )
    ),
]
"""``Tags``: ≤50 entries, key 1-128, value ≤256, letters, digits, spaces and ``_.:/=+-@``."""


def _check_tag_key(value: str) -> str:
    if not _tag_chars(value):
        raise ValueError(f"{value[:64]!r} {TAG_CHARS_RULE}")
    return value


TagKey = Annotated[
    str, StringConstraints(min_length=1, max_length=bounds.MAX_TAG_KEY_CHARS), AfterValidator(_check_tag_key)
]
"""``TagKey``: 1-128 letters, digits, spaces and ``_.:/=+-@`` (UntagResource's ``tagKeys``)."""

TokenParts = Annotated[
    dict[str, str],
    BeforeValidator(
        _string_map_validator(
            min_items=bounds.MIN_TOKEN_PARTS_ITEMS,
            max_items=bounds.MAX_TOKEN_PARTS_ITEMS,
            key_max=bounds.MAX_TOKEN_KEY_CHARS,
            value_max=bounds.MAX_TOKEN_VALUE_CHARS,
            key_ok=_no_whitespace,
            key_rule="contains whitespace",
        )
    ),
]
"""``TokenParts``: 1-10 header-name → value entries (value ≤8000, sensitive)."""


def _exactly_one(model: ApiModel, members: tuple[str, ...]) -> None:
    present = [name for name in members if getattr(model, name) is not None]
    if len(present) != 1:
        got = ", ".join(present) if present else "none"
        raise ValueError(f"exactly one of {', '.join(members)} must be set (got {got})")


# --- Structures ----------------------------------------------------------------------------------------------------
class IdlePolicy(ApiModel):
    """When a RUNNING MicroVM is suspended for idleness, and what happens once suspended."""

    maxIdleDurationSeconds: Annotated[int, Field(ge=bounds.MIN_MAX_IDLE_DURATION_S)]
    suspendedDurationSeconds: Annotated[int, Field(ge=bounds.MIN_SUSPENDED_DURATION_S)]
    autoResumeEnabled: bool


class CloudWatchLogging(ApiModel):
    """Where the managed service sends logs; Ember records the names and keeps logs locally."""

    logGroup: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=bounds.MAX_LOG_GROUP_CHARS, pattern=r"^[a-zA-Z0-9_\-/.#]+$")
        ]
        | None
    ) = None
    logStream: (
        Annotated[str, StringConstraints(min_length=1, max_length=bounds.MAX_LOG_STREAM_CHARS, pattern=r"^[^:*]*$")]
        | None
    ) = None


class LoggingDisabled(EmptyModel):
    """``{}``: logging turned off."""


class Logging(ApiModel):
    """Union: exactly one of ``cloudWatch`` or ``disabled``."""

    disabled: LoggingDisabled | None = None
    cloudWatch: CloudWatchLogging | None = None

    @model_validator(mode="after")
    def _one_member(self) -> Logging:
        _exactly_one(self, ("cloudWatch", "disabled"))
        return self


class CodeArtifact(ApiModel):
    """Where the build's zip comes from (``file://``, ``http(s)://``, ``s3://``; ECR URIs are not supported)."""

    uri: NonBlankString


class CpuConfiguration(ApiModel):
    """One target architecture of the image's builds."""

    architecture: Architecture


class Resources(ApiModel):
    """The VM size of every MicroVM launched from the image version."""

    minimumMemoryInMiB: Annotated[int, Field(ge=bounds.MIN_MEMORY_MIB, le=bounds.MAX_MEMORY_MIB)]


ResourcesList = Annotated[list[Resources], Field(max_length=bounds.MAX_RESOURCES_ITEMS)]

_RUNTIME_TIMEOUT = Annotated[int, Field(ge=bounds.MIN_MICROVM_HOOK_TIMEOUT_S, le=bounds.MAX_MICROVM_HOOK_TIMEOUT_S)]
_IMAGE_TIMEOUT = Annotated[int, Field(ge=bounds.MIN_IMAGE_HOOK_TIMEOUT_S, le=bounds.MAX_IMAGE_HOOK_TIMEOUT_S)]


class MicrovmHooks(ApiModel):
    """Hooks called on every MicroVM: run, resume, suspend, terminate (timeouts 1-60 s)."""

    run: HookState | None = None
    runTimeoutInSeconds: _RUNTIME_TIMEOUT | None = None
    resume: HookState | None = None
    resumeTimeoutInSeconds: _RUNTIME_TIMEOUT | None = None
    suspend: HookState | None = None
    suspendTimeoutInSeconds: _RUNTIME_TIMEOUT | None = None
    terminate: HookState | None = None
    terminateTimeoutInSeconds: _RUNTIME_TIMEOUT | None = None


class MicrovmImageHooks(ApiModel):
    """Hooks called while building an image version: ready, validate (timeouts 1-3600 s)."""

    ready: HookState | None = None
    readyTimeoutInSeconds: _IMAGE_TIMEOUT | None = None
    validate_: HookState | None = Field(default=None, alias="validate")
    validateTimeoutInSeconds: _IMAGE_TIMEOUT | None = None


class Hooks(ApiModel):
    """The app's hook server: its port and which hooks the platform calls (paths are fixed, CONTRACT.md §4)."""

    port: Port | None = None
    microvmHooks: MicrovmHooks | None = None
    microvmImageHooks: MicrovmImageHooks | None = None


class PortRange(ApiModel):
    """Ports ``startPort``..``endPort`` inclusive."""

    startPort: Port
    endPort: Port

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.startPort > self.endPort:
            raise ValueError(f"startPort {self.startPort} is greater than endPort {self.endPort}")
        return self


class AllPorts(EmptyModel):
    """``{}``: every port."""


class PortSpecification(ApiModel):
    """Union: exactly one of ``port``, ``range``, ``allPorts``."""

    port: Port | None = None
    range: PortRange | None = None
    allPorts: AllPorts | None = None

    @model_validator(mode="after")
    def _one_member(self) -> PortSpecification:
        _exactly_one(self, ("port", "range", "allPorts"))
        return self

    def covers(self, port: int) -> bool:
        """Whether a token scoped to this specification may reach ``port``."""
        if self.allPorts is not None:
            return True
        if self.range is not None:
            return self.range.startPort <= port <= self.range.endPort
        return self.port == port
