"""Images: names unique per account, tenant isolation, listing with a name filter, deletion, derived state."""

from __future__ import annotations

import pytest

from ember.contract import ImageState, ImageVersionState, ImageVersionStatus
from ember.store import NameTaken, RecordNotFound, Store, images, versions
from tests.unit.store.conftest import ACCOUNT, CONFIG, OTHER, later, make_image


def test_names_are_unique_per_account(store: Store) -> None:
    make_image(store, "web")
    with pytest.raises(NameTaken), store.write() as session:
        images.create_image(session, ACCOUNT, "web")
    make_image(store, "web", account=OTHER)  # another account may use the name


def test_other_accounts_images_are_not_found(store: Store) -> None:
    make_image(store, "secret", account=OTHER)
    with store.read() as session:
        assert images.find_image(session, ACCOUNT, "secret") is None
        with pytest.raises(RecordNotFound) as caught:
            images.get_image(session, ACCOUNT, "secret")
        assert (caught.value.resource_type, caught.value.resource_id) == ("MicrovmImage", "secret")
        assert [i.name for i in images.list_images(session, ACCOUNT).items] == []
        assert images.count_images(session, OTHER) == 1


def test_name_filter_is_a_literal_substring(store: Store) -> None:
    for name in ("web-a", "web_b", "webXc", "api"):
        make_image(store, name)
    with store.read() as session:
        assert [i.name for i in images.list_images(session, ACCOUNT, name_filter="web").items] == [
            "web-a",
            "web_b",
            "webXc",
        ]
        assert [i.name for i in images.list_images(session, ACCOUNT, name_filter="_c").items] == []
        assert [i.name for i in images.list_images(session, ACCOUNT, name_filter="_").items] == ["web_b"]
        assert [i.name for i in images.list_images(session, ACCOUNT, name_filter="WEB").items] == []
        assert [i.name for i in images.list_images(session, ACCOUNT, name_filter="X").items] == ["webXc"]


def test_deleting_frees_the_name_and_stays_findable(store: Store) -> None:
    image, _ = make_image(store, "web")
    with store.write() as session:
        images.set_image_state(session, images.get_image(session, ACCOUNT, "web"), ImageState.DELETED)
    with store.read() as session:
        assert images.find_image(session, ACCOUNT, "web") is None
        gone = images.find_image(session, ACCOUNT, "web", include_deleted=True)
        assert gone is not None and gone.state is ImageState.DELETED and gone.deleted_at is not None
        assert images.list_images(session, ACCOUNT).items == []
    again, _ = make_image(store, "web")
    assert again.id != image.id


def test_states_are_derived_from_versions_only(store: Store) -> None:
    with store.write() as session:
        image = images.create_image(session, ACCOUNT, "web")
        with pytest.raises(ValueError, match="refresh_image"):
            images.set_image_state(session, image, ImageState.CREATED)


def test_image_state_follows_its_newest_version(store: Store) -> None:
    with store.write() as session:
        image = images.create_image(session, ACCOUNT, "web")
        v1 = versions.create_version(session, image, CONFIG)
        assert image.state is ImageState.CREATING
        versions.set_version_state(session, v1, ImageVersionState.FAILED, "build failed")
        assert (image.state, image.latest_failed_version, image.latest_active_version) == (
            ImageState.CREATE_FAILED,
            "1",
            None,
        )
        v2 = versions.create_version(session, image, CONFIG, now=later(1))
        assert image.state is ImageState.UPDATING
        versions.set_version_state(session, v2, ImageVersionState.SUCCESSFUL)
        assert (image.state, image.latest_active_version, image.latest_failed_version) == (ImageState.UPDATED, "2", "1")
        versions.set_version_status(session, v2, ImageVersionStatus.INACTIVE)
        assert image.latest_active_version is None
        images.set_image_state(session, image, ImageState.DELETING)
        versions.set_version_status(session, v2, ImageVersionStatus.ACTIVE)
        assert image.state is ImageState.DELETING and image.latest_active_version == "2"
