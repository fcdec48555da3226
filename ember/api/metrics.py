"""``GET /ember/metrics?windowSeconds=N`` (Ember extension, operation ``GetMetrics``): the caller's MicroVM states
over time and lifecycle durations, computed from the stored transitions (``microvm_events``) of the caller's
account only. The console charts it; it is in the route table like every API operation (SigV4 or a console
session, the API's validation and errors, documented in ``/openapi.json``).

::

    {"windowSeconds": 3600, "stepSeconds": 60,
     "states": [{"time": "2025-09-09T11:00:00Z", "counts": {"PENDING": 0, "RUNNING": 2, ...}}, ...],
     "launchSeconds":  {"count", "p50", "p90", "max", "recent": [{"microvmId", "seconds", "at"}]},
     "resumeSeconds":  {...}, "suspendSeconds": {...}}

``states`` holds a point every ``stepSeconds`` (= ⌈windowSeconds / 60⌉) from ``now - windowSeconds`` to ``now``
(whole seconds), each counting the account's MicroVMs by the state they were in at that instant (MicroVMs not
yet created are not counted; purged TERMINATED ones are gone). A duration is the time between entering its
first state and the move to its second, for moves that happened inside the window: launch PENDING → RUNNING,
suspend SUSPENDING → SUSPENDED, resume RESUMING → RUNNING. Percentiles are nearest-rank; with no sample they
are null.

``RESUMING`` is not a stored state (a resuming MicroVM stays SUSPENDED to clients until it is RUNNING): the
lifecycle records when a resume started on its SUSPENDED → RUNNING event (``started_at``), and the history is
read as SUSPENDED → RESUMING at that instant, then RESUMING → RUNNING. So a finished resume counts as RESUMING
while it ran and is a ``resumeSeconds`` sample; a resume still under way (or one that failed and left the VM
SUSPENDED) is not known yet and counts as SUSPENDED. Events stored before starts were recorded have none.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ember.api._http import Call
from ember.api._time import iso
from ember.contract._base import ApiModel
from ember.store.models import Microvm, MicrovmEvent

MIN_WINDOW_S = 60
MAX_WINDOW_S = 7 * 24 * 3600
DEFAULT_WINDOW_S = 3600
STEPS = 60
"""Intervals per window: 61 points, enough for a chart, few enough to compute on every refresh."""
MAX_POINTS = 240
RECENT_ITEMS = 10
"""Newest samples listed per duration (the console shows them as a table)."""
STATES = ("PENDING", "RUNNING", "SUSPENDING", "SUSPENDED", "RESUMING", "TERMINATING", "TERMINATED")
DURATIONS = {
    "launchSeconds": ("PENDING", "RUNNING"),
    "resumeSeconds": ("RESUMING", "RUNNING"),
    "suspendSeconds": ("SUSPENDING", "SUSPENDED"),
}
METRICS_PATH = "/ember/metrics"
METRICS_CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("ember_metrics_clock")
"""Epoch seconds now; replaceable so tests can pin the window."""


class MetricsRequest(ApiModel):
    """The query of ``GET /ember/metrics``."""

    windowSeconds: Annotated[int, Field(ge=MIN_WINDOW_S, le=MAX_WINDOW_S)] = DEFAULT_WINDOW_S


class StatePoint(ApiModel):
    """The account's MicroVMs by state at one instant."""

    time: str
    """ISO 8601, UTC, whole seconds."""
    counts: dict[str, int]


class DurationSample(ApiModel):
    """One timed move of one MicroVM."""

    microvmId: str
    seconds: float
    at: str
    """When the move ended (ISO 8601, UTC)."""


class DurationStats(ApiModel):
    """The timed moves of one kind inside the window; percentiles are nearest-rank, null without samples."""

    count: int
    p50: float | None
    p90: float | None
    max: float | None
    recent: list[DurationSample]
    """The newest samples, newest first."""


class MetricsResponse(ApiModel):
    """States over the window and launch, resume and suspend durations (``summarize``)."""

    windowSeconds: int
    stepSeconds: int
    states: list[StatePoint]
    launchSeconds: DurationStats
    resumeSeconds: DurationStats
    suspendSeconds: DurationStats


@dataclass(frozen=True)
class Event:
    """One stored transition, as the computation needs it."""

    microvm_id: str
    from_state: str | None
    to_state: str
    at: float
    """Epoch seconds."""
    started_at: float | None = None
    """Epoch seconds when the work that ended in this move began (a resume's start), if it was recorded."""


def load_history(session: Session, account_id: str, start: float, end: float) -> dict[str, list[Event]]:
    """Per MicroVM of ``account_id``, oldest first: its last event at or before ``start`` and those in the window."""
    start_at, end_at = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    mine = select(Microvm.id).where(Microvm.account_id == account_id)
    before = (
        select(func.max(MicrovmEvent.id))
        .where(MicrovmEvent.microvm_id.in_(mine), MicrovmEvent.at <= start_at)
        .group_by(MicrovmEvent.microvm_id)
    )
    stmt = (
        select(MicrovmEvent)
        .where(
            MicrovmEvent.microvm_id.in_(mine),
            or_(MicrovmEvent.id.in_(before), and_(MicrovmEvent.at > start_at, MicrovmEvent.at <= end_at)),
        )
        .order_by(MicrovmEvent.microvm_id, MicrovmEvent.id)
    )
    history: dict[str, list[Event]] = {}
    for row in session.scalars(stmt):
        started = None if row.started_at is None else row.started_at.timestamp()
        event = Event(row.microvm_id, row.from_state and str(row.from_state), str(row.to_state), row.at.timestamp(),
                      started)
        history.setdefault(row.microvm_id, []).append(event)
    return history


def with_resume_starts(events: Sequence[Event]) -> list[Event]:
    """``events`` (one MicroVM's, oldest first) with each recorded resume start read as a move to RESUMING.

    A SUSPENDED → RUNNING event that carries ``started_at`` becomes SUSPENDED → RESUMING at that instant (kept
    between the previous event and the move, so the timeline stays ordered) followed by RESUMING → RUNNING.
    """
    out: list[Event] = []
    for event in events:
        if event.started_at is not None and (event.from_state, event.to_state) == ("SUSPENDED", "RUNNING"):
            began = min(event.at, max(event.started_at, out[-1].at if out else event.started_at))
            out.append(Event(event.microvm_id, "SUSPENDED", "RESUMING", began))
            event = replace(event, from_state="RESUMING")
        out.append(event)
    return out


def _percentile(sorted_values: Sequence[float], percent: int) -> float:
    return sorted_values[max(0, math.ceil(percent / 100 * len(sorted_values)) - 1)]


def _durations(history: dict[str, list[Event]], first: str, second: str, start: float, end: float) -> dict[str, Any]:
    samples: list[tuple[float, str, float]] = []
    for microvm_id, events in history.items():
        for previous, event in itertools.pairwise(events):
            moved = (event.from_state, event.to_state) == (first, second) and previous.to_state == first
            if moved and start < event.at <= end:
                samples.append((event.at, microvm_id, round(event.at - previous.at, 3)))
    values = sorted(seconds for _, _, seconds in samples)
    newest = sorted(samples, key=lambda s: s[0], reverse=True)[:RECENT_ITEMS]
    return {
        "count": len(values),
        "p50": _percentile(values, 50) if values else None,
        "p90": _percentile(values, 90) if values else None,
        "max": values[-1] if values else None,
        "recent": [{"microvmId": vm, "seconds": seconds, "at": iso(at)} for at, vm, seconds in newest],
    }


def summarize(history: dict[str, list[Event]], *, now: float, window_s: int) -> dict[str, Any]:
    """The metrics document for ``history`` over the ``window_s`` seconds before ``now`` (see the module doc)."""
    end = float(math.floor(now))
    start = end - window_s
    history = {vm: with_resume_starts(events) for vm, events in history.items()}
    step = math.ceil(window_s / STEPS)
    points = min(MAX_POINTS, window_s // step + 1)
    times = [end - (points - 1 - i) * step for i in range(points)]
    timelines = {vm: ([e.at for e in events], [e.to_state for e in events]) for vm, events in history.items()}
    states = []
    for t in times:
        counts = dict.fromkeys(STATES, 0)
        for ats, tos in timelines.values():
            index = bisect.bisect_right(ats, t)
            if index and tos[index - 1] in counts:
                counts[tos[index - 1]] += 1
        states.append({"time": iso(t), "counts": counts})
    out: dict[str, Any] = {"windowSeconds": window_s, "stepSeconds": step, "states": states}
    for name, (first, second) in DURATIONS.items():
        out[name] = _durations(history, first, second, start, end)
    return out


async def get_metrics(call: Call) -> web.StreamResponse:
    """The caller's MicroVM state counts over time and launch/resume/suspend durations."""
    query = call.parse(MetricsRequest)
    now = call.request.app.get(METRICS_CLOCK, time.time)()
    end = float(math.floor(now))
    history = await call.read(load_history, call.account_id, end - query.windowSeconds, end)
    # Written as computed, not through ``to_wire``: a percentile without samples stays a JSON null.
    return web.json_response(summarize(history, now=now, window_s=query.windowSeconds))
