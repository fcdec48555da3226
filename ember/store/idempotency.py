"""``clientToken`` idempotency for CreateMicrovmImage, UpdateMicrovmImage and RunMicrovm (CONTRACT.md §1.6).

Use inside the *same* write transaction as the work::

    h = request_hash(request.model_dump(exclude={"clientToken"}))
    existing = lookup(session, account, "RunMicrovm", token, h)   # IdempotencyMismatch if h differs
    if existing: return <the resource existing names>
    ...create it...
    record(session, account, "RunMicrovm", token, h, microvm.id)

A failed call records nothing, so a retry after a failure runs again. If two calls with one token race on
PostgreSQL, the second ``record`` hits the primary key and its transaction rolls back: retry it, and ``lookup``
then finds the first one's result (SQLite serialises write transactions, so it never races).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ember.store._types import utcnow
from ember.store.errors import IdempotencyMismatch
from ember.store.models import IdempotencyRecord


def request_hash(params: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the request's parameters (the caller leaves out ``clientToken``)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def lookup(session: Session, account_id: str, operation: str, client_token: str, params_hash: str) -> str | None:
    """The resource id an earlier call with this token produced, or None; ``IdempotencyMismatch`` if hashes differ."""
    found = session.get(IdempotencyRecord, (account_id, operation, client_token))
    if found is None:
        return None
    if found.request_hash != params_hash:
        raise IdempotencyMismatch(operation, client_token)
    return found.resource_id


def record(
    session: Session,
    account_id: str,
    operation: str,
    client_token: str,
    params_hash: str,
    resource_id: str,
    *,
    now: datetime | None = None,
) -> IdempotencyRecord:
    """Remember that this token's call succeeded and produced ``resource_id``."""
    entry = IdempotencyRecord(
        account_id=account_id,
        operation=operation,
        client_token=client_token,
        request_hash=params_hash,
        resource_id=resource_id,
        created_at=now or utcnow(),
    )
    session.add(entry)
    session.flush()
    return entry


def purge(session: Session, *, created_before: datetime) -> int:
    """Forget tokens recorded before ``created_before``; returns how many went."""
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < created_before))
    return int(getattr(result, "rowcount", 0) or 0)
