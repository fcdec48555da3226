"""The MicroVM state machine: one transition table and one ``transition()`` that every state change goes through.

::

    RunMicrovm ─► PENDING ──run hook 200──► RUNNING ──suspend / idle──► SUSPENDING ──snapshot saved──► SUSPENDED
                                             ▲  ▲                          │                               │
                                             │  └──── suspend failed ──────┘                               │
                                             └─────────────────── resume (hook 200) ───────────────────────┘
    PENDING | RUNNING | SUSPENDING | SUSPENDED ──terminate / max duration / failure──► TERMINATING ──► TERMINATED

``transition()`` locks the row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite write transactions are already
serialised by ``BEGIN IMMEDIATE``), checks the move against ``TRANSITIONS``, updates the row and its timestamps,
appends a ``microvm_events`` row and logs the move with ``action="microvm_transition"``. An illegal move raises
``IllegalTransition`` (an ``ember.errors.StateConflict``; the API answers ConflictException).

A move that is the end of some work may say when that work began (``started_at``): the lifecycle passes when a
resume was asked for on SUSPENDED → RUNNING. It is kept on the event row only, so metrics can time resumes
while clients still see a resuming MicroVM as SUSPENDED (the contract has no RESUMING state).

What the API does *not* send here: idempotent no-ops (SuspendMicrovm on a SUSPENDED VM, TerminateMicrovm on a
TERMINATED or TERMINATING one) are answered before calling ``transition``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ember.contract.arns import RESOURCE_TYPE_MICROVM
from ember.contract.enums import MicrovmState
from ember.store._types import utcnow
from ember.store.errors import IllegalTransition, RecordNotFound
from ember.store.models import Microvm, MicrovmEvent

log = logging.getLogger(__name__)

S = MicrovmState
TRANSITIONS: dict[MicrovmState, frozenset[MicrovmState]] = {
    # Restoring from the snapshot; the run hook has not answered yet.
    S.PENDING: frozenset({S.RUNNING, S.TERMINATING}),
    # Serving traffic: can be suspended (explicitly or for idleness) or terminated.
    S.RUNNING: frozenset({S.SUSPENDING, S.TERMINATING}),
    # Suspend hook and snapshot in progress; RUNNING again if the snapshot fails.
    S.SUSPENDING: frozenset({S.SUSPENDED, S.RUNNING, S.TERMINATING}),
    # Saved to disk: resumes to RUNNING (resume hook 200) or is terminated (suspended too long, max duration).
    S.SUSPENDED: frozenset({S.RUNNING, S.TERMINATING}),
    # Terminate hook and teardown in progress.
    S.TERMINATING: frozenset({S.TERMINATED}),
    # Final.
    S.TERMINATED: frozenset(),
}
"""``TRANSITIONS[a]`` is the set of states a MicroVM in state ``a`` may move to."""


def can_transition(from_state: MicrovmState, to_state: MicrovmState) -> bool:
    """Whether the table allows ``from_state`` → ``to_state``."""
    return to_state in TRANSITIONS[from_state]


@dataclass(frozen=True)
class Transition:
    """A move that happened: which MicroVM, from where to where, why and when."""

    microvm_id: str
    from_state: MicrovmState | None
    to_state: MicrovmState
    reason: str | None
    at: datetime
    started_at: datetime | None = None
    """When the work that ended in this move began (a resume: when it was asked for); None if not recorded."""


def record_creation(session: Session, microvm: Microvm, *, reason: str | None = None) -> Transition:
    """Log and record the creation of ``microvm`` (nothing → its initial state) as its first event row."""
    return _record(session, microvm.id, None, microvm.state, reason, microvm.created_at)


def transition(
    session: Session,
    microvm_id: str,
    to_state: MicrovmState,
    reason: str | None = None,
    *,
    account_id: str | None = None,
    expect_from: MicrovmState | frozenset[MicrovmState] | None = None,
    now: datetime | None = None,
    started_at: datetime | None = None,
) -> Microvm:
    """Move MicroVM ``microvm_id`` to ``to_state`` and return the updated row (use inside ``Store.write()``).

    ``reason`` becomes ``stateReason`` (None clears it). ``account_id`` scopes the lookup to a tenant (another
    account's VM is ``RecordNotFound``). ``expect_from`` additionally requires the current state to be that one
    (or one of those), for compare-and-set moves such as "suspend only if still RUNNING"; a mismatch is
    ``IllegalTransition``. Timestamps: ``updatedAt`` always; SUSPENDED sets ``suspended_at``; RUNNING clears it and
    restarts the idle clock; TERMINATED sets ``terminatedAt``. ``started_at`` (when the work that ends with this
    move began, e.g. a resume's start) goes on the event row only; a start later than the move is recorded as the
    move's time.
    """
    stmt = select(Microvm).where(Microvm.id == microvm_id).with_for_update()
    if account_id is not None:
        stmt = stmt.where(Microvm.account_id == account_id)
    microvm = session.scalars(stmt).first()
    if microvm is None:
        raise RecordNotFound(RESOURCE_TYPE_MICROVM, microvm_id)
    from_state = microvm.state
    allowed_from = frozenset({expect_from}) if isinstance(expect_from, MicrovmState) else expect_from
    if not can_transition(from_state, to_state) or (allowed_from is not None and from_state not in allowed_from):
        log.debug(
            "illegal MicroVM transition %s: %s -> %s",
            microvm_id,
            from_state,
            to_state,
            extra={
                "action": "microvm_transition_refused",
                "microvm_id": microvm_id,
                "from_state": str(from_state),
                "to_state": str(to_state),
            },
        )
        raise IllegalTransition(microvm_id, from_state, to_state)
    now = now or utcnow()
    if started_at is not None and started_at > now:
        started_at = now  # the wall clock stepped back meanwhile: never record a negative duration
    microvm.state = to_state
    microvm.state_reason = reason
    microvm.updated_at = now
    if to_state is S.SUSPENDED:
        microvm.suspended_at = now
    elif to_state is S.RUNNING:
        microvm.suspended_at = None
        microvm.last_activity_at = now
    elif to_state is S.TERMINATED:
        microvm.terminated_at = now
    session.flush()
    _record(session, microvm_id, from_state, to_state, reason, now, started_at)
    return microvm


def list_events(session: Session, microvm_id: str) -> list[MicrovmEvent]:
    """Every recorded transition of the MicroVM, oldest first."""
    stmt = select(MicrovmEvent).where(MicrovmEvent.microvm_id == microvm_id).order_by(MicrovmEvent.id)
    return list(session.scalars(stmt))


def _record(
    session: Session,
    microvm_id: str,
    from_state: MicrovmState | None,
    to_state: MicrovmState,
    reason: str | None,
    at: datetime,
    started_at: datetime | None = None,
) -> Transition:
    session.add(
        MicrovmEvent(
            microvm_id=microvm_id, from_state=from_state, to_state=to_state, reason=reason, at=at, started_at=started_at
        )
    )
    session.flush()
    log.info(
        "MicroVM %s: %s -> %s%s",
        microvm_id,
        from_state or "(new)",
        to_state,
        f" ({reason})" if reason else "",
        extra={
            "action": "microvm_transition",
            "microvm_id": microvm_id,
            "from_state": None if from_state is None else str(from_state),
            "to_state": str(to_state),
            "reason": reason,
            "took_s": None if started_at is None else round((at - started_at).total_seconds(), 3),
        },
    )
    return Transition(microvm_id, from_state, to_state, reason, at, started_at)
