"""Keyset pagination with opaque ``nextToken`` values, shared by every List query.

Rows are ordered by ``(created_at, id)``, a total, stable order: a row created while a client pages appears on a
later page or not at all, and no row is returned twice or skipped. The token is URL-safe base64 of
``{"v": 1, "c": "<created_at ISO 8601>", "i": <id>}``, the sort key of the last row returned. Clients must treat
it as opaque; a token Ember did not issue raises ``InvalidInput("nextToken", ...)`` (→ ValidationException).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from ember.contract import bounds
from ember.errors import InvalidInput

T = TypeVar("T")
TOKEN_VERSION = 1


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and the token for the next one (None on the last page)."""

    items: Sequence[T]
    next_token: str | None


def encode_token(created_at: datetime, row_id: str | int) -> str:
    """The opaque token that resumes a listing after the row with this sort key."""
    raw = json.dumps({"v": TOKEN_VERSION, "c": created_at.isoformat(), "i": row_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[datetime, Any]:
    """The ``(created_at, id)`` sort key in ``token``; raises ``InvalidInput`` for anything Ember did not issue."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
            raise ValueError("unknown token version")
        created_at = datetime.fromisoformat(data["c"])
        row_id = data["i"]
        if created_at.tzinfo is None or not isinstance(row_id, str | int) or isinstance(row_id, bool):
            raise ValueError("malformed token")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("nextToken", "is not a token returned by this list operation") from None
    return created_at, row_id


def paginate(
    session: Session,
    stmt: Select[Any],
    *,
    created_col: InstrumentedAttribute[datetime],
    id_col: InstrumentedAttribute[Any],
    max_results: int | None,
    next_token: str | None,
) -> Page[Any]:
    """Run ``stmt`` (a ``select(Model)`` with its filters) one page at a time, ordered by ``(created, id)``."""
    limit = bounds.DEFAULT_MAX_RESULTS if max_results is None else max_results
    if not bounds.MIN_MAX_RESULTS <= limit <= bounds.MAX_MAX_RESULTS:
        raise InvalidInput("maxResults", f"{limit} is outside {bounds.MIN_MAX_RESULTS}..{bounds.MAX_MAX_RESULTS}")
    if next_token:
        created_at, row_id = decode_token(next_token)
        stmt = stmt.where(or_(created_col > created_at, and_(created_col == created_at, id_col > row_id)))
    rows = list(session.scalars(stmt.order_by(created_col, id_col).limit(limit + 1)))
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    return Page(rows, encode_token(getattr(last, created_col.key), getattr(last, id_col.key)))
