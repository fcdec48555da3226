"""The base every contract model derives from, and the timestamp type the wire uses.

Attribute names are the wire names (camelCase, as in the service model), so ``to_wire()`` (or
``model_dump(by_alias=True, exclude_none=True)``) is the JSON body real clients expect. The few extension fields
whose wire name is not an identifier (``x-ember-diskSizeInMiB``) carry it as an alias.

Timestamps: the model's ``Timestamp`` shape has no ``timestampFormat``, so rest-json's default applies: epoch
seconds as a JSON number, which botocore parses with ``datetime.fromtimestamp``. Ember writes them with millisecond
precision (a float). On input, numbers and ISO 8601 strings are accepted; naive datetimes are taken as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_epoch_seconds(value: datetime) -> float:
    """Epoch seconds (millisecond precision) of ``value``; a naive datetime is taken as UTC."""
    return round(_as_utc(value).timestamp(), 3)


Timestamp = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(to_epoch_seconds, return_type=float),
]
"""A point in time: an aware UTC ``datetime`` in Python, epoch seconds (a number) on the wire."""


class ApiModel(BaseModel):
    """A request, response or shared shape of the API; unknown fields are rejected."""

    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        str_strip_whitespace=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON body of this model: wire names, no ``null`` members, timestamps as epoch seconds."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class EmptyModel(ApiModel):
    """A shape with no members (``Unit``, ``LoggingDisabled``, the empty responses): ``{}`` on the wire."""
