"""How Ember's own JSON (the metrics route, console sessions) writes a point in time."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(epoch_s: float) -> str:
    """``epoch_s`` as ISO 8601 in UTC, whole seconds (``2025-09-09T12:00:00Z``)."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
