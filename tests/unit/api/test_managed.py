"""Managed base images: every recipe Ember offers is listed; versions are the ones built locally."""

from __future__ import annotations

import pytest

from ember.api.managed import page_of
from ember.errors import InvalidInput
from ember.images.bases import MANAGED_BASES
from tests.unit.api.conftest import PYTHON_BASE, REGION, Api


def test_list_managed_images_names_every_base(api: Api) -> None:
    items = api.client.list_managed_microvm_images()["items"]
    assert [i["imageArn"] for i in items] == [f"arn:aws:lambda:{REGION}:aws:microvm-image:{n}" for n in MANAGED_BASES]
    built = {i["imageArn"]: i for i in items}[PYTHON_BASE]
    assert built["createdAt"].year == 2025 and "updatedAt" in built


def test_list_managed_image_versions(api: Api) -> None:
    items = api.client.list_managed_microvm_image_versions(imageIdentifier=PYTHON_BASE)["items"]
    assert len(items) == 1
    assert items[0]["imageVersion"].endswith(MANAGED_BASES["python-3.11"].key())
    assert items[0]["status"] == "AVAILABLE"
    assert api.client.list_managed_microvm_image_versions(imageIdentifier="debian-bookworm")["items"] == []


def test_unknown_managed_image_is_resource_not_found(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ResourceNotFoundException, match="available: debian-bookworm"):
        api.client.list_managed_microvm_image_versions(imageIdentifier=f"arn:aws:lambda:{REGION}:aws:microvm-image:x")


def test_in_memory_pages_and_their_tokens() -> None:
    first, token = page_of([1, 2, 3], 2, None)
    assert first == [1, 2] and token
    assert page_of([1, 2, 3], 2, token) == ([3], None)
    with pytest.raises(InvalidInput):
        page_of([1], 1, "bogus!")
