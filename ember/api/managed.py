"""Handlers of the managed base images (``ListManagedMicrovmImages*``): what ``FROM`` and ``baseImageArn`` can name.

Ember's managed bases are the recipes of ``ember.images.bases.MANAGED_BASES``, built locally on first use. Every
recipe is listed even before it is built (a build builds it); its versions are the built ones, the one made from
the current recipe AVAILABLE and older ones DEPRECATED. ARNs have account ``aws``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from ember.api._http import Call, run_blocking
from ember.contract import bounds
from ember.contract.arns import RESOURCE_TYPE_IMAGE, managed_image_arn, parse_managed_image_identifier
from ember.contract.enums import ManagedImageVersionStatus
from ember.contract.errors import ResourceNotFoundException
from ember.contract.images import (
    ListManagedMicrovmImagesRequest,
    ListManagedMicrovmImagesResponse,
    ListManagedMicrovmImageVersionsRequest,
    ListManagedMicrovmImageVersionsResponse,
    ManagedMicrovmImageSummary,
    ManagedMicrovmImageVersion,
)
from ember.errors import InvalidInput
from ember.images.bases import MANAGED_BASES, BaseImage, list_bases

T = TypeVar("T")
UNBUILT_CREATED_AT = datetime(2025, 9, 9, tzinfo=UTC)
"""``createdAt`` of a managed base that is not built yet on this server (the API version's date)."""
_TOKEN_PREFIX = "offset:"


def page_of(items: Sequence[T], max_results: int | None, next_token: str | None) -> tuple[list[T], str | None]:
    """One page of an in-memory list; the token is an opaque offset."""
    start = 0
    if next_token:
        try:
            raw = base64.urlsafe_b64decode(next_token + "=" * (-len(next_token) % 4)).decode()
            if not raw.startswith(_TOKEN_PREFIX):
                raise ValueError(raw)
            start = int(raw[len(_TOKEN_PREFIX) :])
            if start < 0:
                raise ValueError(raw)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidInput("nextToken", "is not a token returned by this list operation") from None
    limit = max_results or bounds.DEFAULT_MAX_RESULTS
    end = start + limit
    token = (
        base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{end}".encode()).decode().rstrip("=") if end < len(items) else None
    )
    return list(items[start:end]), token


def _when(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


async def list_managed_images(call: Call) -> ListManagedMicrovmImagesResponse:
    """ListManagedMicrovmImages: every base Ember offers, with when its oldest and newest versions were built."""
    req = call.parse(ListManagedMicrovmImagesRequest)
    built = await run_blocking(list_bases)
    items = []
    for name in MANAGED_BASES:
        versions = [b for b in built if b.name == name]
        items.append(
            ManagedMicrovmImageSummary(
                imageArn=managed_image_arn(call.ctx.region, name),
                createdAt=_when(versions[0].created_at) if versions else UNBUILT_CREATED_AT,
                updatedAt=_when(versions[-1].created_at) if versions else None,
            )
        )
    page, token = page_of(items, req.maxResults, req.nextToken)
    return ListManagedMicrovmImagesResponse(items=page, nextToken=token)


def _status(base: BaseImage) -> ManagedImageVersionStatus:
    current = base.version.endswith("." + MANAGED_BASES[base.name].key())
    return ManagedImageVersionStatus.AVAILABLE if current else ManagedImageVersionStatus.DEPRECATED


async def list_managed_image_versions(call: Call) -> ListManagedMicrovmImageVersionsResponse:
    """ListManagedMicrovmImageVersions: the built versions of one base, oldest first."""
    req = call.parse(ListManagedMicrovmImageVersionsRequest)
    name = parse_managed_image_identifier(req.imageIdentifier, field="imageIdentifier", region=call.ctx.region)
    if name not in MANAGED_BASES:
        raise ResourceNotFoundException(
            f"managed image {name!r} was not found; available: {', '.join(MANAGED_BASES)}",
            resource_type=RESOURCE_TYPE_IMAGE,
            resource_id=req.imageIdentifier,
        )
    built = [b for b in await run_blocking(list_bases) if b.name == name]
    arn = managed_image_arn(call.ctx.region, name)
    items = [
        ManagedMicrovmImageVersion(
            imageArn=arn, imageVersion=b.version, createdAt=_when(b.created_at), status=_status(b)
        )
        for b in built
    ]
    page, token = page_of(items, req.maxResults, req.nextToken)
    return ListManagedMicrovmImageVersionsResponse(items=page, nextToken=token)
