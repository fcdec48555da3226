"""Rows as the contract's response models: what GetMicrovm, ListMicrovmImages & co. put on the wire.

ARNs are built here from the server's region (a setting, not stored), so changing the region renames nothing in
the database. Tags are passed in by the caller (``ember.store.tags.list_tags``) because they live in another table.
"""

from __future__ import annotations

from collections.abc import Mapping

from ember.contract.arns import image_arn
from ember.contract.images import (
    GetMicrovmImageResponse,
    ImageConfig,
    MicrovmImageBuild,
    MicrovmImageBuildSummary,
    MicrovmImageSummary,
    MicrovmImageVersion,
    SnapshotBuild,
)
from ember.contract.microvms import MicrovmDetail, MicrovmItem
from ember.contract.shapes import IdlePolicy
from ember.store.models import Build, Image, ImageVersion, Microvm


def image_arn_of(image: Image, region: str) -> str:
    """The image's ARN in ``region``."""
    return image_arn(region, image.account_id, image.name)


def microvm_detail(microvm: Microvm, region: str) -> MicrovmDetail:
    """The MicroVM as RunMicrovm / GetMicrovm return it."""
    return MicrovmDetail(
        microvmId=microvm.id,
        state=microvm.state,
        endpoint=microvm.endpoint,
        imageArn=image_arn(region, microvm.account_id, microvm.image_name),
        imageVersion=microvm.image_version,
        executionRoleArn=microvm.execution_role_arn,
        idlePolicy=IdlePolicy.model_validate(microvm.idle_policy) if microvm.idle_policy else None,
        maximumDurationInSeconds=microvm.maximum_duration_s,
        startedAt=microvm.created_at,
        terminatedAt=microvm.terminated_at,
        stateReason=microvm.state_reason or None,
        ingressNetworkConnectors=list(microvm.ingress_connectors) or None,
        egressNetworkConnectors=list(microvm.egress_connectors) or None,
    )


def microvm_item(microvm: Microvm, region: str) -> MicrovmItem:
    """The MicroVM as an item of ListMicrovms."""
    return MicrovmItem(
        microvmId=microvm.id,
        state=microvm.state,
        imageArn=image_arn(region, microvm.account_id, microvm.image_name),
        imageVersion=microvm.image_version,
        startedAt=microvm.created_at,
    )


def image_summary(image: Image, region: str) -> MicrovmImageSummary:
    """The image as an item of ListMicrovmImages."""
    return MicrovmImageSummary(
        imageArn=image_arn_of(image, region),
        name=image.name,
        state=image.state,
        latestActiveImageVersion=image.latest_active_version,
        latestFailedImageVersion=image.latest_failed_version,
        createdAt=image.created_at,
    )


def image_detail(image: Image, region: str, tags: Mapping[str, str] | None = None) -> GetMicrovmImageResponse:
    """The image as GetMicrovmImage returns it."""
    return GetMicrovmImageResponse(
        imageArn=image_arn_of(image, region),
        name=image.name,
        state=image.state,
        latestActiveImageVersion=image.latest_active_version,
        latestFailedImageVersion=image.latest_failed_version,
        createdAt=image.created_at,
        updatedAt=image.updated_at,
        tags=dict(tags) if tags else None,
    )


def image_version(
    version: ImageVersion, image: Image, region: str, tags: Mapping[str, str] | None = None
) -> MicrovmImageVersion:
    """The version as GetMicrovmImageVersion / ListMicrovmImageVersions return it (configuration included)."""
    config = ImageConfig.model_validate(version.config).model_dump(by_alias=True, exclude_none=True)
    return MicrovmImageVersion.model_validate(
        {
            **config,
            "imageArn": image_arn_of(image, region),
            "imageVersion": version.version,
            "state": version.state,
            "status": version.status,
            "createdAt": version.created_at,
            "updatedAt": version.updated_at,
            "stateReason": version.state_reason,
            "tags": dict(tags) if tags else None,
        }
    )


def build_summary(build: Build, version: ImageVersion, image: Image, region: str) -> MicrovmImageBuildSummary:
    """The build as an item of ListMicrovmImageBuilds."""
    return MicrovmImageBuildSummary(
        imageArn=image_arn_of(image, region),
        imageVersion=version.version,
        buildId=build.build_id,
        buildState=build.state,
        architecture=build.architecture,
        chipset=build.chipset,
        chipsetGeneration=build.chipset_generation,
        stateReason=build.state_reason,
        createdAt=build.created_at,
    )


def build_detail(build: Build, version: ImageVersion, image: Image, region: str) -> MicrovmImageBuild:
    """The build as GetMicrovmImageBuild returns it (with the snapshot sizes once known)."""
    sizes = (build.memory_snapshot_size_bytes, build.disk_snapshot_size_bytes, build.code_install_size_bytes)
    return MicrovmImageBuild(
        **dict(build_summary(build, version, image, region)),
        snapshotBuild=SnapshotBuild(
            memorySnapshotSizeInBytes=build.memory_snapshot_size_bytes,
            diskSnapshotSizeInBytes=build.disk_snapshot_size_bytes,
            codeInstallSizeInBytes=build.code_install_size_bytes,
        )
        if any(size is not None for size in sizes)
        else None,
    )
