"""Handlers of the image operations: create and update (each a new version and build), get, list and delete images.

Versions and builds have their own module (``versions``). What a create or update may ask for is checked here
before anything is stored: the base image must be one Ember offers (``ember.images.bases.MANAGED_BASES``),
``cpuConfigurations`` may only name the host's architecture (ARM_64 is mapped to it only when the server says so),
and a ``file://`` code artifact must be one the caller uploaded (``ember.api.artifacts.check_code_artifact``; the
build is held to the same folder).
The build itself runs in ``ember.images.service.ImageService`` once the rows are committed.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ember.api._http import Call, page_token, run_blocking
from ember.api.artifacts import check_code_artifact
from ember.api.context import ApiContext
from ember.contract import bounds
from ember.contract.arns import RESOURCE_TYPE_IMAGE, managed_image_arn, parse_image_identifier
from ember.contract.arns import parse_managed_image_identifier as parse_base
from ember.contract.enums import Architecture, Chipset, ImageState, ImageVersionState, MicrovmState
from ember.contract.errors import ConflictException, ServiceQuotaExceededException, ValidationException
from ember.contract.images import (
    CreateMicrovmImageRequest,
    CreateMicrovmImageResponse,
    DeleteMicrovmImageRequest,
    DeleteMicrovmImageResponse,
    GetMicrovmImageRequest,
    GetMicrovmImageResponse,
    ImageConfig,
    ListMicrovmImagesRequest,
    ListMicrovmImagesResponse,
    UpdateMicrovmImageRequest,
    UpdateMicrovmImageResponse,
)
from ember.images.bases import MANAGED_BASES, list_bases
from ember.store import builds, idempotency, images, tags, versions, views
from ember.store.models import Image, ImageVersion, Microvm

BUILDING_STATES = (ImageVersionState.PENDING, ImageVersionState.IN_PROGRESS)
DELETION_STATES = (ImageState.DELETING, ImageState.DELETE_FAILED, ImageState.DELETED)
IMAGE_COUNT_QUOTA_CODE = "ember-max-images"
"""``quotaCode`` of the image-count quota (the managed service's code for it is not known)."""
LATEST_BASE_VERSION = "latest"
CREATE_OP = "CreateMicrovmImage"
UPDATE_OP = "UpdateMicrovmImage"


# --- checks shared by create and update -----------------------------------------------------------------------------
def image_name(call: Call, identifier: str, field: str = "imageIdentifier") -> str:
    """The image name in ``identifier`` (name or ARN); another account's ARN is ResourceNotFoundException."""
    return parse_image_identifier(identifier, field=field, account=call.account_id, region=call.ctx.region)


def check_base_image(ctx: ApiContext, config: ImageConfig) -> str:
    """The managed base ``baseImageArn`` names; ValidationException listing what Ember offers otherwise."""
    name = parse_base(config.baseImageArn, field="baseImageArn", region=ctx.region)
    offered = ", ".join(managed_image_arn(ctx.region, base) for base in MANAGED_BASES)
    if name not in MANAGED_BASES:
        why = (
            f"{name!r} (Amazon Linux 2023) is not available in Ember"
            if name.startswith("al2023")
            else f"{name!r} is not a managed base image Ember offers"
        )
        raise ValidationException.for_field("baseImageArn", f"{why}; available: {offered}")
    wanted = config.baseImageVersion
    if wanted is not None and wanted != LATEST_BASE_VERSION:
        built = [b.version for b in list_bases() if b.name == name]
        if wanted not in built:
            choices = ", ".join([LATEST_BASE_VERSION, *built])
            raise ValidationException.for_field(
                "baseImageVersion", f"{wanted[:64]!r} is not a version of {name}; available: {choices}"
            )
    return name


def build_architecture(ctx: ApiContext, config: ImageConfig) -> Architecture:
    """The architecture to build for: the host's. Another one is a ValidationException naming the host's
    (ARM_64 is accepted and built for the host when ``ctx.map_arm64`` is on)."""
    host = Architecture(ctx.architecture)
    for i, cpu in enumerate(config.cpuConfigurations or []):
        if cpu.architecture == host or (cpu.architecture == Architecture.ARM_64 and ctx.map_arm64):
            continue
        raise ValidationException.for_field(
            f"cpuConfigurations[{i}].architecture",
            f"{cpu.architecture} is not available on this Ember server; available: {host}",
        )
    return host


@functools.cache
def host_chipset() -> tuple[Chipset, str]:
    """The host CPU's chipset (INTEL, AMD, else GENERIC) and a generation label (its model name)."""
    vendor = model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "vendor_id" and not vendor:
                vendor = value.strip()
            elif key == "model name" and not model:
                model = " ".join(value.split())
    chipset = {"GenuineIntel": Chipset.INTEL, "AuthenticAMD": Chipset.AMD}.get(vendor, Chipset.GENERIC)
    return chipset, (model or platform.machine() or "unknown")[:64]


def request_hash(request: Any) -> str:
    """The idempotency hash of a request: every member but ``clientToken``."""
    return idempotency.request_hash(
        request.model_dump(mode="json", by_alias=True, exclude={"clientToken"}, exclude_none=True)
    )


def building_versions(session: Session, image: Image) -> list[str]:
    """The image's versions whose build has not finished."""
    stmt = select(ImageVersion.version).where(
        ImageVersion.image_id == image.id, ImageVersion.state.in_(BUILDING_STATES)
    )
    return list(session.scalars(stmt))


def live_microvm_count(session: Session, image: Image, version: ImageVersion | None = None) -> int:
    """How many MicroVMs of the image (or one version) are not TERMINATED."""
    stmt = (
        select(func.count())
        .select_from(Microvm)
        .where(Microvm.image_id == image.id, Microvm.state != MicrovmState.TERMINATED)
    )
    if version is not None:
        stmt = stmt.where(Microvm.version_id == version.id)
    return int(session.scalar(stmt) or 0)


def _new_build(session: Session, version: ImageVersion, arch: Architecture) -> str:
    chipset, generation = host_chipset()
    return builds.create_build(
        session, version, architecture=arch, chipset=chipset, chipset_generation=generation
    ).build_id


def _response(model: type[Any], image: Image, version: ImageVersion, ctx: ApiContext, tag_map: dict[str, str]) -> Any:
    config = versions.version_config(version).to_wire()
    return model.model_validate(
        {
            **config,
            "imageArn": views.image_arn_of(image, ctx.region),
            "name": image.name,
            "state": image.state,
            "latestActiveImageVersion": image.latest_active_version,
            "latestFailedImageVersion": image.latest_failed_version,
            "createdAt": image.created_at,
            "updatedAt": image.updated_at,
            "imageVersion": version.version,
            **({"tags": tag_map} if tag_map and "tags" in model.model_fields else {}),
        }
    )


def _replay(session: Session, call: Call, op: str, token: str | None, params_hash: str, model: type[Any]) -> Any:
    """The response of an earlier call with this clientToken, or None (IdempotencyMismatch if parameters differ)."""
    if not token:
        return None
    found = idempotency.lookup(session, call.account_id, op, token, params_hash)
    if found is None:
        return None
    image_id, _, number = found.partition("/")
    image = session.get(Image, int(image_id))
    if image is None or image.account_id != call.account_id:
        return None
    version = versions.get_version(session, image, number, include_deleted=True)
    arn = views.image_arn_of(image, call.ctx.region)
    return _response(model, image, version, call.ctx, tags.list_tags(session, call.account_id, arn))


# --- handlers -------------------------------------------------------------------------------------------------------
async def create_image(call: Call) -> CreateMicrovmImageResponse:
    """CreateMicrovmImage: the image, its version "1" and one build for the host, then the build is scheduled."""
    req = call.parse(CreateMicrovmImageRequest)
    ctx = call.ctx
    config = req.image_config()
    check_base_image(ctx, config)
    arch = build_architecture(ctx, config)
    file_root = await run_blocking(check_code_artifact, ctx, call.account_id, config.codeArtifact.uri)
    params_hash = request_hash(req)

    def txn(session: Session) -> tuple[CreateMicrovmImageResponse, str | None]:
        replay = _replay(session, call, CREATE_OP, req.clientToken, params_hash, CreateMicrovmImageResponse)
        if replay is not None:
            return replay, None
        count = images.count_images(session, call.account_id)
        if count >= ctx.quotas.max_images:
            raise ServiceQuotaExceededException(
                f"the account has {count} images, the maximum is {ctx.quotas.max_images}: delete images first",
                resource_type=RESOURCE_TYPE_IMAGE,
                resource_id=req.name,
                quota_code=IMAGE_COUNT_QUOTA_CODE,
            )
        image = images.create_image(session, call.account_id, req.name)
        version = versions.create_version(session, image, config)
        build_id = _new_build(session, version, arch)
        arn = views.image_arn_of(image, ctx.region)
        if req.tags:
            tags.tag_resource(session, call.account_id, arn, req.tags)
        if req.clientToken:
            idempotency.record(
                session, call.account_id, CREATE_OP, req.clientToken, params_hash, f"{image.id}/{version.version}"
            )
        return _response(CreateMicrovmImageResponse, image, version, ctx, dict(req.tags or {})), build_id

    response, build_id = await call.write(txn)
    if build_id is not None:
        ctx.images.schedule(build_id, file_root=file_root)
    return response


async def update_image(call: Call) -> UpdateMicrovmImageResponse:
    """UpdateMicrovmImage: full replacement; a new version and build every time (not while one is building)."""
    for member in ("name", "tags"):
        if member in call.body:
            raise ValidationException.for_field(
                member,
                "UpdateMicrovmImage does not accept it: name and tags are set by CreateMicrovmImage only "
                "(change tags with TagResource)",
            )
    req = call.parse(UpdateMicrovmImageRequest)
    ctx = call.ctx
    name = image_name(call, req.imageIdentifier)
    config = req.image_config()
    check_base_image(ctx, config)
    arch = build_architecture(ctx, config)
    file_root = await run_blocking(check_code_artifact, ctx, call.account_id, config.codeArtifact.uri)
    params_hash = request_hash(req)

    def txn(session: Session) -> tuple[UpdateMicrovmImageResponse, str | None]:
        replay = _replay(session, call, UPDATE_OP, req.clientToken, params_hash, UpdateMicrovmImageResponse)
        if replay is not None:
            return replay, None
        image = images.get_image(session, call.account_id, name, for_update=True)
        if image.state in DELETION_STATES:
            raise ConflictException(
                f"image {name} is {image.state}", resource_type=RESOURCE_TYPE_IMAGE, resource_id=name
            )
        busy = building_versions(session, image)
        if busy:
            raise ConflictException(
                f"image {name} is building version {busy[0]}: wait until it is SUCCESSFUL or FAILED, then update",
                resource_type=RESOURCE_TYPE_IMAGE,
                resource_id=name,
            )
        version = versions.create_version(session, image, config)
        build_id = _new_build(session, version, arch)
        if req.clientToken:
            idempotency.record(
                session, call.account_id, UPDATE_OP, req.clientToken, params_hash, f"{image.id}/{version.version}"
            )
        return _response(UpdateMicrovmImageResponse, image, version, ctx, {}), build_id

    response, build_id = await call.write(txn)
    if build_id is not None:
        ctx.images.schedule(build_id, file_root=file_root)
    return response


async def get_image(call: Call) -> GetMicrovmImageResponse:
    """GetMicrovmImage: the image (no configuration: that lives on versions) with its tags."""
    req = call.parse(GetMicrovmImageRequest)
    name = image_name(call, req.imageIdentifier)

    def txn(session: Session) -> GetMicrovmImageResponse:
        image = images.get_image(session, call.account_id, name)
        arn = views.image_arn_of(image, call.ctx.region)
        return views.image_detail(image, call.ctx.region, tags.list_tags(session, call.account_id, arn))

    return await call.read(txn)


async def list_images(call: Call) -> ListMicrovmImagesResponse:
    """ListMicrovmImages: a page of the account's images, oldest first, optionally by name substring."""
    req = call.parse(ListMicrovmImagesRequest)

    def txn(session: Session) -> ListMicrovmImagesResponse:
        page = images.list_images(
            session,
            call.account_id,
            name_filter=req.nameFilter,
            max_results=req.maxResults,
            next_token=page_token(req.nextToken, int),
        )
        return ListMicrovmImagesResponse(
            items=[views.image_summary(image, call.ctx.region) for image in page.items], nextToken=page.next_token
        )

    return await call.read(txn)


async def delete_image(call: Call) -> DeleteMicrovmImageResponse:
    """DeleteMicrovmImage: idempotent; Conflict while a version builds or MicroVMs of the image are not TERMINATED."""
    req = call.parse(DeleteMicrovmImageRequest)
    ctx = call.ctx
    name = image_name(call, req.imageIdentifier)

    def txn(session: Session) -> tuple[ImageState, list[Path]]:
        image = images.find_image(session, call.account_id, name, for_update=True)
        if image is None:
            images.get_image(session, call.account_id, name, include_deleted=True)  # RecordNotFound if never existed
            return ImageState.DELETED, []
        busy = building_versions(session, image)
        if busy:
            raise ConflictException(
                f"image {name} is building version {busy[0]}: wait for the build to finish",
                resource_type=RESOURCE_TYPE_IMAGE,
                resource_id=name,
            )
        running = live_microvm_count(session, image)
        if running:
            raise ConflictException(
                f"image {name} has {running} MicroVMs that are not TERMINATED: terminate them first",
                resource_type=RESOURCE_TYPE_IMAGE,
                resource_id=name,
            )
        dirs = []
        page = versions.list_versions(session, image, max_results=bounds.MAX_MAX_RESULTS)
        while True:
            for version in page.items:
                dirs.append(ctx.images.version_dir(image, version))
                versions.set_version_state(session, version, ImageVersionState.DELETED)
            if page.next_token is None:
                break
            page = versions.list_versions(
                session, image, max_results=bounds.MAX_MAX_RESULTS, next_token=page.next_token
            )
        tags.delete_tags(session, call.account_id, views.image_arn_of(image, ctx.region))
        images.set_image_state(session, image, ImageState.DELETED)
        return ImageState.DELETED, dirs

    state, dirs = await call.write(txn)
    await run_blocking(remove_dirs, dirs)
    return DeleteMicrovmImageResponse(imageIdentifier=req.imageIdentifier, state=state)


def remove_dirs(dirs: list[Path]) -> None:
    """Delete image version directories (snapshots, rootfs, build log); missing ones are fine."""
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)
