"""``GET /ember/metrics?windowSeconds=N``: the caller's MicroVM states over time and lifecycle durations, computed
from the stored transitions (``microvm_events``) of the caller's account only.

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
are null. ``RESUMING`` is not a state the store records (a resuming MicroVM stays SUSPENDED until it is
RUNNING), so its count is 0 and ``resumeSeconds`` stays empty until the lifecycle records resume starts.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ember.api.app import CTX, authenticate
from ember.console._time import iso
from ember.contract._base import ApiModel
from ember.contract.validation import parse_request
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


_INT_RE = re.compile(r"-?[0-9]{1,18}")


class MetricsRequest(ApiModel):
    """The query of ``GET /ember/metrics``."""

    windowSeconds: Annotated[int, Field(ge=MIN_WINDOW_S, le=MAX_WINDOW_S)] = DEFAULT_WINDOW_S


@dataclass(frozen=True)
class Event:
    """One stored transition, as the computation needs it."""

    microvm_id: str
    from_state: str | None
    to_state: str
    at: float
    """Epoch seconds."""


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
        event = Event(row.microvm_id, row.from_state and str(row.from_state), str(row.to_state), row.at.timestamp())
        history.setdefault(row.microvm_id, []).append(event)
    return history


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


async def metrics(request: web.Request) -> web.StreamResponse:
    """The caller's MicroVM state counts over time and launch/resume/suspend durations."""
    ctx = request.app[CTX]
    account_id = await authenticate(ctx, request, await request.read())
    members: dict[str, Any] = {}
    if "windowSeconds" in request.query:
        raw = request.query["windowSeconds"]
        members["windowSeconds"] = int(raw) if _INT_RE.fullmatch(raw) else raw
    query = parse_request(MetricsRequest, members)
    now = request.app.get(METRICS_CLOCK, time.time)()
    end = float(math.floor(now))
    history = await ctx.store.aread(load_history, account_id, end - query.windowSeconds, end)
    return web.json_response(summarize(history, now=now, window_s=query.windowSeconds))
