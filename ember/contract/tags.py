"""Requests and responses of the tag API (Lambda-classic routes under ``/2017-03-31/tags/{Resource}``).

These operations use Lambda's classic error types: validate with
``parse_request(Model, data, error_cls=InvalidParameterValueException)``. Ember tags images (``microvm-image``);
MicroVMs and image versions cannot be tagged through this API (the model's ``TaggableResource`` excludes them).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from ember.contract import bounds
from ember.contract._base import ApiModel, EmptyModel
from ember.contract.shapes import TagKey
from ember.contract.shapes import Tags as TagMap

TAGGABLE_RESOURCE_PATTERN = (
    r"^arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}"
    r"|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(capacity-provider|network-connector|microvm-image):[a-zA-Z0-9-_]+)$"
)
"""The model's ``TaggableResource`` pattern, anchored."""
_TAGGABLE_RE = re.compile(TAGGABLE_RESOURCE_PATTERN)


def _check_taggable(value: str) -> str:
    if not _TAGGABLE_RE.match(value):
        shown = value if len(value) <= 64 else value[:61] + "..."
        raise ValueError(
            f"{shown!r} is not a taggable resource ARN (arn:aws:lambda:<region>:<account>:microvm-image:<name>)"
        )
    return value


TaggableResource = Annotated[
    str,
    StringConstraints(min_length=1, max_length=bounds.MAX_TAGGABLE_RESOURCE_CHARS),
    AfterValidator(_check_taggable),
]


class ListTagsRequest(ApiModel):
    """GET /2017-03-31/tags/{Resource}."""

    Resource: TaggableResource


class ListTagsResponse(ApiModel):
    """``{"Tags": {...}}``."""

    Tags: TagMap | None = None


class TagResourceRequest(ApiModel):
    """POST /2017-03-31/tags/{Resource} body ``{"Tags": {...}}`` → 204; adds or overwrites keys."""

    Resource: TaggableResource
    Tags: TagMap


class UntagResourceRequest(ApiModel):
    """DELETE /2017-03-31/tags/{Resource}?tagKeys=a&tagKeys=b → 204; unknown keys are ignored."""

    Resource: TaggableResource
    TagKeys: list[TagKey]


class TagResourceResponse(EmptyModel):
    """No body (HTTP 204)."""


class UntagResourceResponse(EmptyModel):
    """No body (HTTP 204)."""
