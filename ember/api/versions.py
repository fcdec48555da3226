"""Handlers of image versions and builds: get, list, set status (ACTIVE/INACTIVE), delete; list and get builds."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from ember.api._http import Call, page_token, run_blocking
from ember.api.images import BUILDING_STATES, image_name, live_microvm_count, remove_dirs
from ember.contract.enums import ImageVersionState
from ember.contract.errors import ConflictException
from ember.contract.images import (
    DeleteMicrovmImageVersionRequest,
    DeleteMicrovmImageVersionResponse,
    GetMicrovmImageBuildRequest,
    GetMicrovmImageBuildResponse,
    GetMicrovmImageVersionRequest,
    GetMicrovmImageVersionResponse,
    ListMicrovmImageBuildsRequest,
    ListMicrovmImageBuildsResponse,
    ListMicrovmImageVersionsRequest,
    ListMicrovmImageVersionsResponse,
    UpdateMicrovmImageVersionRequest,
    UpdateMicrovmImageVersionResponse,
)
from ember.store import builds, images, tags, versions, views
from ember.store.models import Image
from ember.store.versions import RESOURCE_TYPE_VERSION


def _image_tags(session: Session, call: Call, image: Image) -> dict[str, str]:
    return tags.list_tags(session, call.account_id, views.image_arn_of(image, call.ctx.region))


async def get_version(call: Call) -> GetMicrovmImageVersionResponse:
    """GetMicrovmImageVersion: the version's full configuration, state and status."""
    req = call.parse(GetMicrovmImageVersionRequest)
    name = image_name(call, req.imageIdentifier)

    def txn(session: Session) -> GetMicrovmImageVersionResponse:
        image = images.get_image(session, call.account_id, name)
        version = versions.get_version(session, image, req.imageVersion)
        return views.image_version(version, image, call.ctx.region, _image_tags(session, call, image))

    return await call.read(txn)


async def list_versions(call: Call) -> ListMicrovmImageVersionsResponse:
    """ListMicrovmImageVersions: a page of the image's versions, oldest first."""
    req = call.parse(ListMicrovmImageVersionsRequest)
    name = image_name(call, req.imageIdentifier)

    def txn(session: Session) -> ListMicrovmImageVersionsResponse:
        image = images.get_image(session, call.account_id, name)
        page = versions.list_versions(
            session, image, max_results=req.maxResults, next_token=page_token(req.nextToken, int)
        )
        tag_map = _image_tags(session, call, image)
        return ListMicrovmImageVersionsResponse(
            items=[views.image_version(v, image, call.ctx.region, tag_map) for v in page.items],
            nextToken=page.next_token,
        )

    return await call.read(txn)


async def update_version(call: Call) -> UpdateMicrovmImageVersionResponse:
    """UpdateMicrovmImageVersion: allow (ACTIVE) or block (INACTIVE) launches; only a SUCCESSFUL version."""
    req = call.parse(UpdateMicrovmImageVersionRequest)
    name = image_name(call, req.imageIdentifier)

    def txn(session: Session) -> UpdateMicrovmImageVersionResponse:
        image = images.get_image(session, call.account_id, name, for_update=True)
        version = versions.get_version(session, image, req.imageVersion)
        if version.state is not ImageVersionState.SUCCESSFUL:
            raise ConflictException(
                f"version {version.version} of image {name} is {version.state}: only a SUCCESSFUL version's status "
                "can change",
                resource_type=RESOURCE_TYPE_VERSION,
                resource_id=f"{name}:{version.version}",
            )
        versions.set_version_status(session, version, req.status)
        return views.image_version(version, image, call.ctx.region, _image_tags(session, call, image))

    return await call.write(txn)


async def delete_version(call: Call) -> DeleteMicrovmImageVersionResponse:
    """DeleteMicrovmImageVersion: idempotent; Conflict while it builds or has MicroVMs that are not TERMINATED."""
    req = call.parse(DeleteMicrovmImageVersionRequest)
    name = image_name(call, req.imageIdentifier)

    def txn(session: Session) -> list[Path]:
        image = images.find_image(session, call.account_id, name, for_update=True)
        if image is None:
            images.get_image(session, call.account_id, name, include_deleted=True)  # RecordNotFound if never existed
            return []
        version = versions.find_version(session, image, req.imageVersion, include_deleted=True)
        if version is None:
            versions.get_version(session, image, req.imageVersion)  # raises RecordNotFound
            return []
        if version.state is ImageVersionState.DELETED:
            return []
        resource = f"{name}:{version.version}"
        if version.state in BUILDING_STATES:
            raise ConflictException(
                f"version {version.version} of image {name} is still building",
                resource_type=RESOURCE_TYPE_VERSION,
                resource_id=resource,
            )
        running = live_microvm_count(session, image, version)
        if running:
            raise ConflictException(
                f"version {version.version} of image {name} has {running} MicroVMs that are not TERMINATED: "
                "terminate them first",
                resource_type=RESOURCE_TYPE_VERSION,
                resource_id=resource,
            )
        versions.set_version_state(session, version, ImageVersionState.DELETED)
        return [call.ctx.images.version_dir(image, version)]

    dirs = await call.write(txn)
    await run_blocking(remove_dirs, dirs)
    return DeleteMicrovmImageVersionResponse(
        imageIdentifier=req.imageIdentifier, imageVersion=req.imageVersion, state=ImageVersionState.DELETED
    )


async def list_builds(call: Call) -> ListMicrovmImageBuildsResponse:
    """ListMicrovmImageBuilds: a page of the version's builds, optionally filtered by target."""
    req = call.parse(ListMicrovmImageBuildsRequest)
    name = image_name(call, req.imageIdentifier)

    def txn(session: Session) -> ListMicrovmImageBuildsResponse:
        image = images.get_image(session, call.account_id, name)
        version = versions.get_version(session, image, req.imageVersion)
        page = builds.list_builds(
            session,
            version,
            architecture=req.architecture,
            chipset=req.chipset,
            chipset_generation=req.chipsetGeneration,
            max_results=req.maxResults,
            next_token=page_token(req.nextToken, int),
        )
        return ListMicrovmImageBuildsResponse(
            items=[views.build_summary(b, version, image, call.ctx.region) for b in page.items],
            nextToken=page.next_token,
        )

    return await call.read(txn)


async def get_build(call: Call) -> GetMicrovmImageBuildResponse:
    """GetMicrovmImageBuild: one build with its snapshot sizes once known."""
    req = call.parse(GetMicrovmImageBuildRequest)
    name = image_name(call, req.imageIdentifier)

    def txn(session: Session) -> GetMicrovmImageBuildResponse:
        image = images.get_image(session, call.account_id, name)
        version = versions.get_version(session, image, req.imageVersion)
        build = builds.get_build(session, version, req.buildId)
        return views.build_detail(build, version, image, call.ctx.region)

    return await call.read(txn)
