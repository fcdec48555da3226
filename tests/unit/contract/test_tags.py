"""Tag API models: taggable ARNs and the 204 responses."""

from __future__ import annotations

import pytest

import ember.contract as c

ARN = c.image_arn("us-east-1", "123456789012", "web")


def test_image_arn_is_taggable() -> None:
    request = c.parse_request(c.TagResourceRequest, {"Resource": ARN, "Tags": {"a": "b"}})
    assert request.Tags == {"a": "b"}
    assert c.ListTagsResponse(Tags={"a": "b"}).to_wire() == {"Tags": {"a": "b"}}


@pytest.mark.parametrize(
    "resource",
    [
        c.microvm_arn("us-east-1", "123456789012", "mvm-" + "0" * 32),
        "arn:aws:lambda:us-east-1:aws:microvm-image:python-3.11",
        "arn:aws:lambda:us-east-1:123456789012:microvm-image:web/1",
    ],
)
def test_microvms_and_versions_are_not_taggable(resource: str) -> None:
    with pytest.raises(c.InvalidParameterValueException, match=r"^Resource: .* is not a taggable resource ARN"):
        c.parse_request(c.ListTagsRequest, {"Resource": resource}, error_cls=c.InvalidParameterValueException)


def test_untag_takes_keys() -> None:
    request = c.parse_request(c.UntagResourceRequest, {"Resource": ARN, "TagKeys": ["a", "b"]})
    assert request.TagKeys == ["a", "b"]
    assert c.TagResourceResponse().to_wire() == {}
