"""Tags: add/overwrite, remove, per-account, and the per-resource cap."""

from __future__ import annotations

import pytest

from ember.contract import bounds, image_arn
from ember.errors import InvalidInput
from ember.store import Store, tags
from tests.unit.store.conftest import ACCOUNT, OTHER

ARN = image_arn("us-east-1", ACCOUNT, "web")


def test_tag_untag_list(store: Store) -> None:
    with store.write() as session:
        assert tags.tag_resource(session, ACCOUNT, ARN, {"a": "1", "b": "2"}) == {"a": "1", "b": "2"}
        assert tags.tag_resource(session, ACCOUNT, ARN, {"a": "3"}) == {"a": "3", "b": "2"}
        tags.untag_resource(session, ACCOUNT, ARN, ["b", "missing"])
    with store.read() as session:
        assert tags.list_tags(session, ACCOUNT, ARN) == {"a": "3"}
        assert tags.list_tags(session, OTHER, ARN) == {}
    with store.write() as session:
        tags.delete_tags(session, ACCOUNT, ARN)
        assert tags.list_tags(session, ACCOUNT, ARN) == {}


def test_tag_cap_counts_existing_tags(store: Store) -> None:
    with store.write() as session:
        tags.tag_resource(session, ACCOUNT, ARN, {f"k{i}": "" for i in range(bounds.MAX_TAGS_ITEMS)})
    with pytest.raises(InvalidInput, match="more than the maximum 50"), store.write() as session:
        tags.tag_resource(session, ACCOUNT, ARN, {"one-more": ""})
    with store.write() as session:
        tags.tag_resource(session, ACCOUNT, ARN, {"k0": "overwrite is fine"})
