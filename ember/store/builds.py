"""Builds: one per (architecture, chipset, chipsetGeneration) of a version; their states make the version's state.

Build states go PENDING → IN_PROGRESS → SUCCESSFUL | FAILED (the last two are final). After each change the
version's state is recomputed (``aggregate_state``), which in turn refreshes the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ember.contract.arns import new_build_id
from ember.contract.enums import Architecture, BuildState, Chipset, ImageVersionState
from ember.errors import StateConflict
from ember.store._types import utcnow
from ember.store.errors import RecordNotFound
from ember.store.models import Build, ImageVersion
from ember.store.paging import Page, paginate
from ember.store.versions import set_version_state

RESOURCE_TYPE_BUILD = "MicrovmImageBuild"
FINAL_BUILD_STATES = frozenset({BuildState.SUCCESSFUL, BuildState.FAILED})
BUILD_MOVES: dict[BuildState, frozenset[BuildState]] = {
    BuildState.PENDING: frozenset({BuildState.IN_PROGRESS, BuildState.FAILED}),
    BuildState.IN_PROGRESS: frozenset({BuildState.SUCCESSFUL, BuildState.FAILED}),
    BuildState.SUCCESSFUL: frozenset(),
    BuildState.FAILED: frozenset(),
}
"""Which build states may follow which (PENDING → FAILED covers a build that cannot even start)."""
BUILDS_FAILED_REASON = "one or more builds failed"


def create_build(
    session: Session,
    version: ImageVersion,
    *,
    architecture: Architecture,
    chipset: Chipset,
    chipset_generation: str,
    build_id: str | None = None,
    now: datetime | None = None,
) -> Build:
    """A PENDING build of ``version`` for one target; ``build_id`` defaults to fresh random hex."""
    now = now or utcnow()
    build = Build(
        build_id=build_id or new_build_id(),
        version_id=version.id,
        state=BuildState.PENDING,
        architecture=architecture,
        chipset=chipset,
        chipset_generation=chipset_generation,
        created_at=now,
        updated_at=now,
    )
    session.add(build)
    session.flush()
    return build


def get_build(session: Session, version: ImageVersion, build_id: str) -> Build:
    """Build ``build_id`` of ``version`` (already scoped to the caller's account); ``RecordNotFound`` if absent."""
    build = session.scalars(select(Build).where(Build.version_id == version.id, Build.build_id == build_id)).first()
    if build is None:
        raise RecordNotFound(RESOURCE_TYPE_BUILD, build_id)
    return build


def find_build(session: Session, build_id: str) -> Build | None:
    """A build by id across all accounts (for the build pipeline, which holds the id), or None."""
    return session.scalars(select(Build).where(Build.build_id == build_id)).first()


def list_builds(
    session: Session,
    version: ImageVersion,
    *,
    architecture: Architecture | None = None,
    chipset: Chipset | None = None,
    chipset_generation: str | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> Page[Build]:
    """A page of the version's builds, oldest first, optionally filtered by target."""
    stmt = select(Build).where(Build.version_id == version.id)
    if architecture is not None:
        stmt = stmt.where(Build.architecture == architecture)
    if chipset is not None:
        stmt = stmt.where(Build.chipset == chipset)
    if chipset_generation is not None:
        stmt = stmt.where(Build.chipset_generation == chipset_generation)
    return paginate(
        session, stmt, created_col=Build.created_at, id_col=Build.id, max_results=max_results, next_token=next_token
    )


def set_build_state(
    session: Session,
    build: Build,
    state: BuildState,
    reason: str | None = None,
    *,
    memory_snapshot_size_bytes: int | None = None,
    disk_snapshot_size_bytes: int | None = None,
    code_install_size_bytes: int | None = None,
    now: datetime | None = None,
) -> Build:
    """Move the build to ``state`` (per ``BUILD_MOVES``), record sizes, and recompute its version's state."""
    if state is not build.state and state not in BUILD_MOVES[build.state]:
        raise StateConflict(f"build {build.build_id} cannot go from {build.state} to {state}")
    now = now or utcnow()
    build.state = state
    build.state_reason = reason
    build.updated_at = now
    if state is BuildState.IN_PROGRESS and build.started_at is None:
        build.started_at = now
    if state in FINAL_BUILD_STATES:
        build.finished_at = now
    if memory_snapshot_size_bytes is not None:
        build.memory_snapshot_size_bytes = memory_snapshot_size_bytes
    if disk_snapshot_size_bytes is not None:
        build.disk_snapshot_size_bytes = disk_snapshot_size_bytes
    if code_install_size_bytes is not None:
        build.code_install_size_bytes = code_install_size_bytes
    session.flush()
    version = session.get(ImageVersion, build.version_id)
    if version is not None and version.state in (
        ImageVersionState.PENDING,
        ImageVersionState.IN_PROGRESS,
    ):
        builds = session.scalars(select(Build).where(Build.version_id == version.id)).all()
        new_state, new_reason = aggregate_state(builds)
        if new_state is not version.state or new_reason != version.state_reason:
            set_version_state(session, version, new_state, new_reason, now=now)
    return build


def aggregate_state(builds: Sequence[Build]) -> tuple[ImageVersionState, str | None]:
    """A version's state from its builds: any unfinished → PENDING/IN_PROGRESS; any FAILED → FAILED; else SUCCESSFUL."""
    states = [b.state for b in builds]
    if not states or all(s is BuildState.PENDING for s in states):
        return ImageVersionState.PENDING, None
    if any(s in (BuildState.PENDING, BuildState.IN_PROGRESS) for s in states):
        return ImageVersionState.IN_PROGRESS, None
    failed = [b for b in builds if b.state is BuildState.FAILED]
    if failed:
        detail = failed[0].state_reason
        return ImageVersionState.FAILED, f"{BUILDS_FAILED_REASON}: {detail}" if detail else BUILDS_FAILED_REASON
    return ImageVersionState.SUCCESSFUL, None
