"""MicroVM rows: insert, tenant-scoped lookup and listing, and the non-state fields the host and gateway update.

State changes do not happen here: they go through ``ember.store.transitions.transition``. Queries without an
account (``find_microvm(..., account_id=None)``, ``microvms_in_states``) are for the lifecycle and reconcile loops,
never for answering an API caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ember.contract.arns import RESOURCE_TYPE_MICROVM, new_microvm_id
from ember.contract.bounds import DEFAULT_MAXIMUM_DURATION_S, vcpus_for_memory_mib
from ember.contract.enums import MicrovmState
from ember.contract.shapes import IdlePolicy, Logging
from ember.store._types import utcnow
from ember.store.errors import RecordNotFound
from ember.store.models import Image, ImageVersion, Microvm, MicrovmEvent
from ember.store.paging import Page, paginate
from ember.store.transitions import record_creation

HOLDS_MEMORY_STATES = frozenset(set(MicrovmState) - {MicrovmState.TERMINATED})
"""States whose VMs count against the memory quota (suspended ones too, CONTRACT.md §8.2)."""


def insert_microvm(
    session: Session,
    *,
    account_id: str,
    image: Image,
    version: ImageVersion,
    endpoint: str,
    microvm_id: str | None = None,
    execution_role_arn: str | None = None,
    idle_policy: IdlePolicy | None = None,
    logging: Logging | None = None,
    maximum_duration_s: int = DEFAULT_MAXIMUM_DURATION_S,
    ingress_connectors: Sequence[str] = (),
    egress_connectors: Sequence[str] = (),
    run_hook_payload: str | None = None,
    host_id: str | None = None,
    host_dir: str | None = None,
    now: datetime | None = None,
) -> Microvm:
    """A new PENDING MicroVM of ``version`` (its creation recorded as the first event), sized by the version.

    ``microvm_id`` defaults to a fresh ``mvm-…`` id; pass one when the endpoint embeds it.
    """
    now = now or utcnow()
    microvm = Microvm(
        id=microvm_id or new_microvm_id(),
        account_id=account_id,
        image_id=image.id,
        image_name=image.name,
        version_id=version.id,
        image_version=version.version,
        state=MicrovmState.PENDING,
        endpoint=endpoint,
        execution_role_arn=execution_role_arn,
        idle_policy=idle_policy.to_wire() if idle_policy is not None else None,
        logging=logging.to_wire() if logging is not None else None,
        maximum_duration_s=maximum_duration_s,
        ingress_connectors=list(ingress_connectors),
        egress_connectors=list(egress_connectors),
        run_hook_payload=run_hook_payload,
        memory_mib=version.memory_mib,
        vcpus=vcpus_for_memory_mib(version.memory_mib),
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        host_id=host_id,
        host_dir=host_dir,
    )
    session.add(microvm)
    session.flush()
    record_creation(session, microvm)
    return microvm


def find_microvm(session: Session, microvm_id: str, *, account_id: str | None) -> Microvm | None:
    """The MicroVM, or None; ``account_id=None`` looks across accounts (internal callers only)."""
    stmt = select(Microvm).where(Microvm.id == microvm_id)
    if account_id is not None:
        stmt = stmt.where(Microvm.account_id == account_id)
    return session.scalars(stmt).first()


def get_microvm(session: Session, account_id: str, microvm_id: str) -> Microvm:
    """The caller's MicroVM; ``RecordNotFound`` if it does not exist in ``account_id``."""
    microvm = find_microvm(session, microvm_id, account_id=account_id)
    if microvm is None:
        raise RecordNotFound(RESOURCE_TYPE_MICROVM, microvm_id)
    return microvm


def list_microvms(
    session: Session,
    account_id: str,
    *,
    image_name: str | None = None,
    image_version: str | None = None,
    states: Iterable[MicrovmState] | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> Page[Microvm]:
    """A page of the account's MicroVMs (TERMINATED included), oldest first, optionally filtered."""
    stmt = select(Microvm).where(Microvm.account_id == account_id)
    if image_name is not None:
        stmt = stmt.where(Microvm.image_name == image_name)
    if image_version is not None:
        stmt = stmt.where(Microvm.image_version == image_version)
    if states is not None:
        stmt = stmt.where(Microvm.state.in_(list(states)))
    return paginate(
        session,
        stmt,
        created_col=Microvm.created_at,
        id_col=Microvm.id,
        max_results=max_results,
        next_token=next_token,
    )


def microvms_in_states(
    session: Session, states: Iterable[MicrovmState], *, host_id: str | None = None
) -> list[Microvm]:
    """Every MicroVM (all accounts) in one of ``states``, oldest first: for timers and reconcile at start."""
    stmt = select(Microvm).where(Microvm.state.in_(list(states)))
    if host_id is not None:
        stmt = stmt.where(Microvm.host_id == host_id)
    return list(session.scalars(stmt.order_by(Microvm.created_at, Microvm.id)))


def allocated_memory_mib(session: Session, account_id: str) -> int:
    """Memory held by the account's MicroVMs that are not TERMINATED (for the memory quota)."""
    stmt = select(func.coalesce(func.sum(Microvm.memory_mib), 0)).where(
        Microvm.account_id == account_id, Microvm.state.in_(list(HOLDS_MEMORY_STATES))
    )
    return int(session.scalar(stmt) or 0)


def record_activity(session: Session, microvm_id: str, at: datetime | None = None) -> None:
    """Restart the idle clock: the gateway saw an inbound request (or an open connection) for the MicroVM."""
    at = at or utcnow()
    session.execute(
        update(Microvm)
        .where(Microvm.id == microvm_id, Microvm.last_activity_at < at)
        .values(last_activity_at=at)
        .execution_options(synchronize_session=False)
    )


_HOST_FIELDS = frozenset({"host_id", "host_dir", "endpoint"})


def set_host_fields(session: Session, microvm_id: str, **fields: Any) -> Microvm:
    """Update where the MicroVM lives (``host_id``, ``host_dir``, ``endpoint``); state goes through transition()."""
    unknown = set(fields) - _HOST_FIELDS
    if unknown:
        raise ValueError(f"set_host_fields cannot set {sorted(unknown)}; allowed: {sorted(_HOST_FIELDS)}")
    microvm = find_microvm(session, microvm_id, account_id=None)
    if microvm is None:
        raise RecordNotFound(RESOURCE_TYPE_MICROVM, microvm_id)
    for name, value in fields.items():
        setattr(microvm, name, value)
    microvm.updated_at = utcnow()
    session.flush()
    return microvm


def purge_terminated(session: Session, *, terminated_before: datetime) -> int:
    """Delete MicroVMs TERMINATED before ``terminated_before`` with their events; returns how many went."""
    ids = list(
        session.scalars(
            select(Microvm.id).where(
                Microvm.state == MicrovmState.TERMINATED, Microvm.terminated_at < terminated_before
            )
        )
    )
    if not ids:
        return 0
    session.execute(delete(MicrovmEvent).where(MicrovmEvent.microvm_id.in_(ids)))
    session.execute(delete(Microvm).where(Microvm.id.in_(ids)))
    return len(ids)
