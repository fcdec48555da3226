"""Stored log lines of MicroVMs (app stdout/stderr) and builds, read back in order from a cursor.

Each owner's lines are numbered from 1 (``seq``); ``read_logs(..., after_seq=n)`` returns what came after line
``n``, so a follower polls with the last ``seq`` it saw. Owners are identified by globally unique ids (MicroVM id,
build id): the API checks the caller owns the MicroVM or build before reading its log.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ember.store._types import utcnow
from ember.store.models import LogLine

OWNER_MICROVM = "microvm"
OWNER_BUILD = "build"
STREAM_STDOUT = "stdout"
STREAM_STDERR = "stderr"
DEFAULT_READ_LIMIT_LINES = 1000


def append_logs(
    session: Session,
    owner_kind: str,
    owner_id: str,
    lines: Iterable[str],
    *,
    stream: str = STREAM_STDOUT,
    at: datetime | None = None,
) -> int:
    """Append ``lines`` (without newlines) to the owner's log; returns the ``seq`` of the last line (0 if none).

    One writer per owner is expected (the VM's or build's log pump); a concurrent second writer would hit the
    unique ``seq`` constraint and roll back rather than interleave numbers.
    """
    at = at or utcnow()
    last = session.scalar(
        select(func.coalesce(func.max(LogLine.seq), 0)).where(
            LogLine.owner_kind == owner_kind, LogLine.owner_id == owner_id
        )
    )
    seq = int(last or 0)
    for line in lines:
        seq += 1
        session.add(LogLine(owner_kind=owner_kind, owner_id=owner_id, seq=seq, at=at, stream=stream, line=line))
    session.flush()
    return seq


def append_entries(
    session: Session, owner_kind: str, owner_id: str, entries: Iterable[tuple[datetime, str, str]]
) -> int:
    """Append ``(at, stream, line)`` entries, each with its own time and stream; the ``seq`` of the last line."""
    last = session.scalar(
        select(func.coalesce(func.max(LogLine.seq), 0)).where(
            LogLine.owner_kind == owner_kind, LogLine.owner_id == owner_id
        )
    )
    seq = int(last or 0)
    for at, stream, line in entries:
        seq += 1
        session.add(LogLine(owner_kind=owner_kind, owner_id=owner_id, seq=seq, at=at, stream=stream, line=line))
    session.flush()
    return seq


def read_logs(
    session: Session,
    owner_kind: str,
    owner_id: str,
    *,
    after_seq: int = 0,
    since: datetime | None = None,
    limit: int = DEFAULT_READ_LIMIT_LINES,
) -> list[LogLine]:
    """Up to ``limit`` lines after line ``after_seq`` (and at or after ``since``), in order."""
    stmt = select(LogLine).where(
        LogLine.owner_kind == owner_kind, LogLine.owner_id == owner_id, LogLine.seq > after_seq
    )
    if since is not None:
        stmt = stmt.where(LogLine.at >= since)
    return list(session.scalars(stmt.order_by(LogLine.seq).limit(limit)))


def delete_logs(session: Session, owner_kind: str, owner_id: str) -> None:
    """Remove every line of the owner's log."""
    session.execute(delete(LogLine).where(LogLine.owner_kind == owner_kind, LogLine.owner_id == owner_id))
