"""Log lines of a MicroVM or a build, as Ember's log routes send them (an extension of the API, CONTRACT §10).

``GET /2025-09-09/microvms/{id}/logs`` and ``GET …/versions/{v}/builds/{buildId}/logs`` answer NDJSON: one
``{"seq", "at", "stream", "line"}`` object per line (``at`` in epoch seconds), numbered from 1 per owner.
``?since=N`` starts after line N; ``?follow=true`` keeps the response open and sends lines as they are
written, ending when the MicroVM terminates or the build finishes. A JSON page (``{"items": [...]}``) is
read the same way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from .errors import SdkError


class LogLine(BaseModel):
    """One line of output: its number, when it was written, its stream (``stdout``, ``stderr``, ``build``...)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    seq: int
    time: datetime = Field(validation_alias=AliasChoices("at", "time"))
    stream: str = "stdout"
    line: str

    @field_validator("time", mode="before")
    @classmethod
    def _epoch(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        return value


def parse_log_lines(raw: bytes) -> list[LogLine]:
    """The log lines in one NDJSON line, or in a JSON page with ``items`` (several at once)."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise SdkError(f"unexpected log line from the API: {raw[:200]!r}") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return [LogLine.model_validate(item) for item in data["items"]]
    if isinstance(data, dict) and "line" in data:
        return [LogLine.model_validate(data)]
    return []  # a heartbeat or a member this client does not know


def iter_log_lines(chunks: Iterable[bytes]) -> Iterator[LogLine]:
    """Every log line in a stream of NDJSON lines."""
    for chunk in chunks:
        yield from parse_log_lines(chunk)


async def aiter_log_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[LogLine]:
    """Every log line in an async stream of NDJSON lines."""
    async for chunk in chunks:
        for line in parse_log_lines(chunk):
            yield line


__all__ = ["LogLine", "aiter_log_lines", "iter_log_lines", "parse_log_lines"]
