"""Requests and responses of the image operations: images, versions, builds and managed base images (§1.4, 1-13).

Request models carry every member of the operation's input shape, path and query members included, so the API
layer validates ``{**query, **body, **path}`` in one ``parse_request`` call. An image version's configuration
(``ImageConfig``) is shared by Create/Update requests and by every response that echoes it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ember.contract import bounds
from ember.contract._base import ApiModel, Timestamp
from ember.contract.enums import (
    Architecture,
    BuildState,
    Capability,
    Chipset,
    ImageState,
    ImageVersionState,
    ImageVersionStatus,
    ManagedImageVersionStatus,
)
from ember.contract.shapes import (
    ClientToken,
    CodeArtifact,
    CpuConfiguration,
    EgressConnector,
    EnvironmentVariables,
    Hooks,
    Identifier,
    ImageName,
    Logging,
    MaxResults,
    NonBlankString,
    ResourcesList,
    RoleArn,
    Tags,
)

DISK_SIZE_ALIAS = "x-ember-diskSizeInMiB"
"""Wire name of Ember's disk-size extension field (§10)."""

ImageEgressConnectors = Annotated[list[EgressConnector], Field(max_length=bounds.MAX_IMAGE_EGRESS_CONNECTORS_ITEMS)]
DiskSizeMiB = Annotated[int, Field(ge=bounds.MIN_DISK_SIZE_MIB, le=bounds.MAX_DISK_SIZE_MIB)]


class ImageConfig(ApiModel):
    """The configuration of one image version: what Create/Update send and every version response echoes."""

    baseImageArn: NonBlankString
    baseImageVersion: NonBlankString | None = None
    buildRoleArn: RoleArn
    description: str | None = None
    codeArtifact: CodeArtifact
    logging: Logging | None = None
    egressNetworkConnectors: ImageEgressConnectors | None = None
    cpuConfigurations: list[CpuConfiguration] | None = None
    resources: ResourcesList | None = None
    additionalOsCapabilities: list[Capability] | None = None
    hooks: Hooks | None = None
    environmentVariables: EnvironmentVariables | None = None
    diskSizeInMiB: DiskSizeMiB | None = Field(default=None, alias=DISK_SIZE_ALIAS)
    """Ember extension (§10): the VM's disk, rootfs included; default ``bounds.DEFAULT_DISK_SIZE_MIB``."""

    def memory_mib(self) -> int:
        """The VM memory this configuration asks for (``resources[0].minimumMemoryInMiB``, else the default)."""
        return self.resources[0].minimumMemoryInMiB if self.resources else bounds.DEFAULT_MEMORY_MIB

    def disk_size_mib(self) -> int:
        """The VM disk this configuration asks for (``x-ember-diskSizeInMiB``, else the default)."""
        return self.diskSizeInMiB if self.diskSizeInMiB is not None else bounds.DEFAULT_DISK_SIZE_MIB

    def image_config(self) -> ImageConfig:
        """Just the configuration members, as a plain ``ImageConfig`` (e.g. to store a version)."""
        return ImageConfig.model_validate(self.model_dump(include=set(ImageConfig.model_fields)))


class _ImageHead(ApiModel):
    imageArn: NonBlankString
    name: ImageName
    state: ImageState
    latestActiveImageVersion: NonBlankString | None = None
    latestFailedImageVersion: NonBlankString | None = None
    createdAt: Timestamp


# --- CreateMicrovmImage / UpdateMicrovmImage -----------------------------------------------------------------------
class CreateMicrovmImageRequest(ImageConfig):
    """POST /2025-09-09/microvm-images → 201: a new image, its version "1" and its builds."""

    name: ImageName
    tags: Tags | None = None
    clientToken: ClientToken | None = None


class CreateMicrovmImageResponse(ImageConfig, _ImageHead):
    """The image with the new version's configuration echoed back."""

    imageVersion: NonBlankString
    updatedAt: Timestamp | None = None
    tags: Tags | None = None


class UpdateMicrovmImageRequest(ImageConfig):
    """PUT /2025-09-09/microvm-images/{imageIdentifier}: full replacement; a new version and build every time.

    ``name`` and ``tags`` are not accepted (they are create-only): sending them is a ``ValidationException``.
    """

    imageIdentifier: Identifier
    clientToken: ClientToken | None = None


class UpdateMicrovmImageResponse(ImageConfig, _ImageHead):
    """The image with the new version's configuration echoed back."""

    imageVersion: NonBlankString
    updatedAt: Timestamp


# --- GetMicrovmImage / ListMicrovmImages / DeleteMicrovmImage ------------------------------------------------------
class GetMicrovmImageRequest(ApiModel):
    """GET /2025-09-09/microvm-images/{imageIdentifier}."""

    imageIdentifier: Identifier


class GetMicrovmImageResponse(_ImageHead):
    """The image without configuration (that lives on versions)."""

    updatedAt: Timestamp | None = None
    tags: Tags | None = None


class MicrovmImageSummary(_ImageHead):
    """One item of ListMicrovmImages."""


class ListMicrovmImagesRequest(ApiModel):
    """GET /2025-09-09/microvm-images?maxResults&nextToken&nameFilter (substring match on the name)."""

    maxResults: MaxResults | None = None
    nextToken: str | None = None
    nameFilter: NonBlankString | None = None


class ListMicrovmImagesResponse(ApiModel):
    """A page of images; ``nextToken`` is absent on the last page."""

    items: list[MicrovmImageSummary]
    nextToken: str | None = None


class DeleteMicrovmImageRequest(ApiModel):
    """DELETE /2025-09-09/microvm-images/{imageIdentifier} (idempotent: deleting a deleted image succeeds)."""

    imageIdentifier: Identifier


class DeleteMicrovmImageResponse(ApiModel):
    """The identifier as given and the image's state (DELETING or DELETED)."""

    imageIdentifier: Identifier
    state: ImageState


# --- Versions ------------------------------------------------------------------------------------------------------
class MicrovmImageVersion(ImageConfig):
    """One version (GetMicrovmImageVersion, UpdateMicrovmImageVersion, ListMicrovmImageVersions items)."""

    imageArn: NonBlankString
    imageVersion: NonBlankString
    state: ImageVersionState
    status: ImageVersionStatus
    createdAt: Timestamp
    updatedAt: Timestamp | None = None
    stateReason: str | None = None
    tags: Tags | None = None


GetMicrovmImageVersionResponse = MicrovmImageVersion
UpdateMicrovmImageVersionResponse = MicrovmImageVersion


class GetMicrovmImageVersionRequest(ApiModel):
    """GET /2025-09-09/microvm-images/{imageIdentifier}/versions/{imageVersion}."""

    imageIdentifier: Identifier
    imageVersion: NonBlankString


class ListMicrovmImageVersionsRequest(ApiModel):
    """GET /2025-09-09/microvm-images/{imageIdentifier}/versions?maxResults&nextToken."""

    imageIdentifier: Identifier
    maxResults: MaxResults | None = None
    nextToken: str | None = None


class ListMicrovmImageVersionsResponse(ApiModel):
    """A page of versions, oldest first."""

    items: list[MicrovmImageVersion]
    nextToken: str | None = None


class UpdateMicrovmImageVersionRequest(ApiModel):
    """PATCH …/versions/{imageVersion}: allow (ACTIVE) or block (INACTIVE) launches from the version."""

    imageIdentifier: Identifier
    imageVersion: NonBlankString
    status: ImageVersionStatus


class DeleteMicrovmImageVersionRequest(ApiModel):
    """DELETE …/versions/{imageVersion} (idempotent)."""

    imageIdentifier: Identifier
    imageVersion: NonBlankString


class DeleteMicrovmImageVersionResponse(ApiModel):
    """The identifiers as given and the version's state (DELETING or DELETED)."""

    imageIdentifier: Identifier
    imageVersion: NonBlankString
    state: ImageVersionState


# --- Builds --------------------------------------------------------------------------------------------------------
class MicrovmImageBuildSummary(ApiModel):
    """One build of a version for one (architecture, chipset, chipsetGeneration)."""

    imageArn: NonBlankString
    imageVersion: NonBlankString
    buildId: NonBlankString
    buildState: BuildState
    architecture: Architecture
    chipset: Chipset
    chipsetGeneration: NonBlankString
    stateReason: str | None = None
    createdAt: Timestamp


class SnapshotBuild(ApiModel):
    """Sizes of what a successful build produced, in bytes."""

    memorySnapshotSizeInBytes: int | None = None
    codeInstallSizeInBytes: int | None = None
    diskSnapshotSizeInBytes: int | None = None


class MicrovmImageBuild(MicrovmImageBuildSummary):
    """GetMicrovmImageBuild's response: the summary plus the snapshot sizes."""

    snapshotBuild: SnapshotBuild | None = None


GetMicrovmImageBuildResponse = MicrovmImageBuild


class GetMicrovmImageBuildRequest(ApiModel):
    """GET …/versions/{imageVersion}/builds/{buildId}."""

    imageIdentifier: Identifier
    imageVersion: NonBlankString
    buildId: NonBlankString


class ListMicrovmImageBuildsRequest(ApiModel):
    """GET …/versions/{imageVersion}/builds?maxResults&nextToken&architecture&chipset&chipsetGeneration."""

    imageIdentifier: Identifier
    imageVersion: NonBlankString
    maxResults: MaxResults | None = None
    nextToken: str | None = None
    architecture: Architecture | None = None
    chipset: Chipset | None = None
    chipsetGeneration: NonBlankString | None = None


class ListMicrovmImageBuildsResponse(ApiModel):
    """A page of builds."""

    items: list[MicrovmImageBuildSummary]
    nextToken: str | None = None


# --- Managed base images -------------------------------------------------------------------------------------------
class ManagedMicrovmImageSummary(ApiModel):
    """A managed base image (``arn:aws:lambda:<region>:aws:microvm-image:<name>``)."""

    imageArn: NonBlankString
    createdAt: Timestamp
    updatedAt: Timestamp | None = None


class ListManagedMicrovmImagesRequest(ApiModel):
    """GET /2025-09-09/managed-microvm-images?maxResults&nextToken."""

    maxResults: MaxResults | None = None
    nextToken: str | None = None


class ListManagedMicrovmImagesResponse(ApiModel):
    """A page of managed base images."""

    items: list[ManagedMicrovmImageSummary]
    nextToken: str | None = None


class ManagedMicrovmImageVersion(ApiModel):
    """One version of a managed base image; ``status`` comes from the [K] model revision."""

    imageArn: NonBlankString
    imageVersion: NonBlankString
    createdAt: Timestamp
    updatedAt: Timestamp | None = None
    status: ManagedImageVersionStatus | None = None


class ListManagedMicrovmImageVersionsRequest(ApiModel):
    """GET /2025-09-09/managed-microvm-images/{imageIdentifier}/versions?maxResults&nextToken."""

    imageIdentifier: Identifier
    maxResults: MaxResults | None = None
    nextToken: str | None = None


class ListManagedMicrovmImageVersionsResponse(ApiModel):
    """A page of managed base image versions."""

    items: list[ManagedMicrovmImageVersion]
    nextToken: str | None = None
