"""The timers of CONTRACT §2 and §10 as pure decisions: given a MicroVM's facts and the time, what is due.

- ``maximumDurationInSeconds`` counts from the start, suspended time included → terminate.
- RUNNING with an idle policy, no open connection and no request for
  ``maxIdleDurationSeconds`` → suspend.
- SUSPENDED for ``suspendedDurationSeconds`` (> 0) → terminate; 0 means until the maximum duration.

Every input is a stored timestamp, so the decisions survive a restart of ``ember serve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ember.contract.enums import MicrovmState


class Due(StrEnum):
    NOTHING = "nothing"
    SUSPEND = "suspend"
    TERMINATE = "terminate"


@dataclass(frozen=True)
class Decision:
    due: Due
    reason: str = ""


def decide(*, state: MicrovmState, created_at: datetime, maximum_duration_s: int, idle_policy: dict[str, Any] | None,
           last_activity_at: datetime, suspended_at: datetime | None, open_connections: int,
           now: datetime) -> Decision:
    """What the timers want done to one MicroVM at ``now``."""
    if state in (MicrovmState.TERMINATING, MicrovmState.TERMINATED):
        return Decision(Due.NOTHING)
    age_s = (now - created_at).total_seconds()
    if age_s >= maximum_duration_s:
        return Decision(Due.TERMINATE, f"maximumDurationInSeconds ({maximum_duration_s} s) reached")
    if not idle_policy:
        return Decision(Due.NOTHING)
    if state is MicrovmState.RUNNING and open_connections == 0:
        max_idle = int(idle_policy.get("maxIdleDurationSeconds", 0))
        idle_s = (now - last_activity_at).total_seconds()
        if max_idle > 0 and idle_s >= max_idle:
            return Decision(Due.SUSPEND, f"idle for {int(idle_s)} s (maxIdleDurationSeconds {max_idle})")
    if state is MicrovmState.SUSPENDED and suspended_at is not None:
        parked = int(idle_policy.get("suspendedDurationSeconds", 0))
        if parked > 0 and (now - suspended_at).total_seconds() >= parked:
            return Decision(Due.TERMINATE, f"suspended for {parked} s (suspendedDurationSeconds)")
    return Decision(Due.NOTHING)
