"""Versions: numbered per image, never reused, auto-ACTIVE on success, and what RunMicrovm launches."""

from __future__ import annotations

import pytest

from ember.contract import ImageConfig, ImageVersionState, ImageVersionStatus
from ember.store import RecordNotFound, Store, images, versions
from tests.unit.store.conftest import ACCOUNT, CONFIG, later, make_image


def test_versions_are_numbered_per_image(store: Store) -> None:
    with store.write() as session:
        a = images.create_image(session, ACCOUNT, "a")
        b = images.create_image(session, ACCOUNT, "b")
        numbers = [versions.create_version(session, a, CONFIG).version for _ in range(3)]
        assert numbers == ["1", "2", "3"]
        assert versions.create_version(session, b, CONFIG).version == "1"


def test_numbers_are_not_reused_after_deletion(store: Store) -> None:
    image, _ = make_image(store)
    with store.write() as session:
        versions.set_version_state(session, versions.get_version(session, image, "1"), ImageVersionState.DELETED)
        assert versions.find_version(session, image, "1") is None
        assert versions.find_version(session, image, "1", include_deleted=True) is not None
        assert versions.create_version(session, image, CONFIG).version == "2"


def test_new_version_is_pending_inactive_and_sized_from_config(store: Store) -> None:
    with store.write() as session:
        image = images.create_image(session, ACCOUNT, "web")
        big = ImageConfig.model_validate({**CONFIG.to_wire(), "x-ember-diskSizeInMiB": 8192})
        version = versions.create_version(session, image, big)
    assert (version.state, version.status) == (ImageVersionState.PENDING, ImageVersionStatus.INACTIVE)
    assert (version.memory_mib, version.disk_size_mib) == (1024, 8192)
    assert versions.version_config(version) == big


def test_success_makes_the_version_active(store: Store) -> None:
    image, _ = make_image(store, ready=False)
    with store.write() as session:
        done = versions.set_version_state(
            session, versions.get_version(session, image, "1"), ImageVersionState.SUCCESSFUL
        )
    assert done.status is ImageVersionStatus.ACTIVE


def test_launch_version_defaults_to_latest_active(store: Store) -> None:
    image, _ = make_image(store)
    with store.write() as session:
        image = images.get_image(session, ACCOUNT, "web")
        v2 = versions.create_version(session, image, CONFIG, now=later(1))
        assert versions.resolve_launch_version(session, image, None).version == "1"
        versions.set_version_state(session, v2, ImageVersionState.SUCCESSFUL)
        assert versions.resolve_launch_version(session, image, None).version == "2"
        assert versions.resolve_launch_version(session, image, "1").version == "1"
        with pytest.raises(RecordNotFound):
            versions.resolve_launch_version(session, image, "9")


def test_no_active_version_is_not_found(store: Store) -> None:
    make_image(store, ready=False)
    with store.read() as session:
        image = images.get_image(session, ACCOUNT, "web")
        with pytest.raises(RecordNotFound, match="has no active version"):
            versions.resolve_launch_version(session, image, None)


def test_list_versions_pages_oldest_first(store: Store) -> None:
    with store.write() as session:
        image = images.create_image(session, ACCOUNT, "web")
        for i in range(5):
            versions.create_version(session, image, CONFIG, now=later(i))
    seen: list[str] = []
    token = None
    with store.read() as session:
        while True:
            page = versions.list_versions(session, image, max_results=2, next_token=token)
            seen += [v.version for v in page.items]
            token = page.next_token
            if token is None:
                break
    assert seen == ["1", "2", "3", "4", "5"]
