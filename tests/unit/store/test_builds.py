"""Builds: their states move forward only and make their version's state."""

from __future__ import annotations

import pytest

from ember.contract import Architecture, BuildState, Chipset, ImageVersionState, ImageVersionStatus
from ember.errors import StateConflict
from ember.store import RecordNotFound, Store, builds, images, versions
from tests.unit.store.conftest import ACCOUNT, OTHER, make_image


def new_build(store: Store, arch: Architecture = Architecture.X86_64, generation: str = "tcg") -> str:
    with store.write() as session:
        image = images.get_image(session, ACCOUNT, "web")
        version = versions.get_version(session, image, "1")
        return builds.create_build(
            session, version, architecture=arch, chipset=Chipset.GENERIC, chipset_generation=generation
        ).build_id


def move(store: Store, build_id: str, state: BuildState, reason: str | None = None, **sizes: int) -> None:
    with store.write() as session:
        build = builds.find_build(session, build_id)
        assert build is not None
        builds.set_build_state(session, build, state, reason, **sizes)


def version_state(store: Store) -> tuple[ImageVersionState, ImageVersionStatus, str | None]:
    with store.read() as session:
        version = versions.get_version(session, images.get_image(session, ACCOUNT, "web"), "1")
        return version.state, version.status, version.state_reason


def test_successful_build_makes_the_version_successful_and_active(store: Store) -> None:
    make_image(store, ready=False)
    build_id = new_build(store)
    assert version_state(store)[0] is ImageVersionState.PENDING
    move(store, build_id, BuildState.IN_PROGRESS)
    assert version_state(store)[0] is ImageVersionState.IN_PROGRESS
    move(store, build_id, BuildState.SUCCESSFUL, memory_snapshot_size_bytes=10, disk_snapshot_size_bytes=20)
    assert version_state(store) == (ImageVersionState.SUCCESSFUL, ImageVersionStatus.ACTIVE, None)
    with store.read() as session:
        build = builds.find_build(session, build_id)
        assert build is not None
        assert (build.memory_snapshot_size_bytes, build.disk_snapshot_size_bytes) == (10, 20)
        assert build.started_at is not None and build.finished_at is not None
        assert images.get_image(session, ACCOUNT, "web").latest_active_version == "1"


def test_one_failed_build_fails_the_version_once_all_are_done(store: Store) -> None:
    make_image(store, ready=False)
    first = new_build(store)
    second = new_build(store, Architecture.ARM_64, "graviton3")
    move(store, first, BuildState.IN_PROGRESS)
    move(store, first, BuildState.FAILED, "RUN pip install exited 1")
    assert version_state(store)[0] is ImageVersionState.IN_PROGRESS
    move(store, second, BuildState.IN_PROGRESS)
    move(store, second, BuildState.SUCCESSFUL)
    state, status, reason = version_state(store)
    assert (state, status) == (ImageVersionState.FAILED, ImageVersionStatus.INACTIVE)
    assert reason == "one or more builds failed: RUN pip install exited 1"


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([BuildState.IN_PROGRESS, BuildState.SUCCESSFUL], BuildState.FAILED),
        ([BuildState.IN_PROGRESS, BuildState.FAILED], BuildState.IN_PROGRESS),
        ([BuildState.IN_PROGRESS], BuildState.PENDING),
        ([], BuildState.SUCCESSFUL),
    ],
)
def test_build_states_only_move_forward(store: Store, path: list[BuildState], bad: BuildState) -> None:
    make_image(store, ready=False)
    build_id = new_build(store)
    for state in path:
        move(store, build_id, state)
    with pytest.raises(StateConflict):
        move(store, build_id, bad)


def test_list_filters_and_scoping(store: Store) -> None:
    make_image(store, ready=False)
    x86 = new_build(store)
    arm = new_build(store, Architecture.ARM_64, "graviton3")
    with store.read() as session:
        version = versions.get_version(session, images.get_image(session, ACCOUNT, "web"), "1")
        assert [b.build_id for b in builds.list_builds(session, version).items] == [x86, arm]
        only_arm = builds.list_builds(session, version, architecture=Architecture.ARM_64)
        assert [b.build_id for b in only_arm.items] == [arm]
        assert builds.list_builds(session, version, chipset_generation="nope").items == []
        assert builds.get_build(session, version, x86).build_id == x86
        with pytest.raises(RecordNotFound):
            builds.get_build(session, version, "0" * 32)
    make_image(store, "web", account=OTHER, ready=False)
    with store.read() as session:
        other_version = versions.get_version(session, images.get_image(session, OTHER, "web"), "1")
        with pytest.raises(RecordNotFound):
            builds.get_build(session, other_version, x86)
