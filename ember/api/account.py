"""``GET /ember/account`` (Ember extension): who the caller is, the account's quotas and how much of them it uses.

::

    {"accountId": "111111111111", "accessKeyId": "AKIA…",
     "quotas": {"microvms": {"value": 50, "unit": "MicroVMs", "quotaCode": "ember-max-microvms",
                             "error": "ServiceQuotaExceededException", "description": "…"}, ...},
     "usage": {"microvmsByState": {"PENDING": 0, "RUNNING": 2, ...}, "microvms": 3, "allocatedMemoryMiB": 1536,
               "images": 2, "imageVersions": 3, "buildsInProgress": 0,
               "uploadedArtifacts": 1, "uploadedArtifactBytes": 20480, "concurrentUploads": 0,
               "storageBytes": {"uploadedArtifacts": 20480, "imageSnapshots": 301989888}}}

The quotas are the server's settings (``ctx.quotas``) under the names their refusals use: ``microvms`` ("the
account has N MicroVMs that are not TERMINATED, the maximum is …"), ``allocatedMemoryMiB`` ("… allocated memory
…, more than the maximum … MiB"), ``images`` ("the account has N images, the maximum is …"),
``runMicrovmCallsPerSecond`` and ``runMicrovmBurst`` ("RunMicrovm allows … calls per second (bursts of …)"),
``uploadedArtifacts`` ("the account keeps N uploaded code artifacts …, the maximum is …"),
``uploadedArtifactBytes`` ("… brings the account's uploaded code artifacts … to N bytes, more than the maximum …")
and ``concurrentUploads`` ("an account streams at most … code artifacts at the same time"); each carries the
``quotaCode`` of that refusal. A quota's usage is the ``usage`` member of the same name, counted exactly as the
check that refuses counts it (``upload_quotas`` for the uploads); the call rate has no usage.

Everything is counted for the caller's account only, in one read transaction (a few aggregate queries), plus one
listing of the caller's upload folder off the event loop. ``storageBytes`` is what is cheaply known: uploaded zips
kept and the snapshot sizes the account's builds recorded (SUSPENDED MicroVMs' own snapshots are not counted).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ember.api import quotas
from ember.api._http import Call
from ember.api.artifacts import account_folder
from ember.api.context import Quotas
from ember.api.images import IMAGE_COUNT_QUOTA_CODE
from ember.api.upload_quotas import (
    ARTIFACT_COUNT_QUOTA_CODE,
    ARTIFACT_STORAGE_QUOTA_CODE,
    CONCURRENT_UPLOADS_QUOTA_CODE,
    UPLOAD_QUOTAS,
    UploadUsage,
)
from ember.contract._base import ApiModel, EmptyModel
from ember.contract.enums import BuildState, ImageVersionState, MicrovmState
from ember.store import images, microvms
from ember.store.models import Build, Image, ImageVersion, Microvm

ACCOUNT_PATH = "/ember/account"
QUOTA_ERROR = "ServiceQuotaExceededException"
RATE_ERROR = "ThrottlingException"
NO_UPLOADS = UploadUsage(artifacts=0, artifact_bytes=0, stored_bytes=0, uploads_in_flight=0)


class GetAccountRequest(EmptyModel):
    """GET /ember/account takes nothing: the account is the caller's."""


class Quota(ApiModel):
    """One limit: its value and unit, and the error (with ``quotaCode``) a call passing it gets."""

    value: int | float
    unit: str
    quotaCode: str
    error: str
    description: str


class StorageBytes(ApiModel):
    """Bytes the account keeps on the server, as far as they are cheaply known."""

    uploadedArtifacts: int
    """Zips uploaded with ``POST /ember/artifacts`` and kept (uploads in flight not included)."""
    imageSnapshots: int
    """Memory and disk snapshot sizes of the successful builds of the account's image versions not deleted."""


class AccountUsage(ApiModel):
    """What the account uses now; a capacity quota's usage has the quota's name."""

    microvmsByState: dict[str, int]
    microvms: int
    """MicroVMs that are not TERMINATED (the ``microvms`` quota)."""
    allocatedMemoryMiB: int
    """Memory of those MicroVMs (the ``allocatedMemoryMiB`` quota)."""
    images: int
    """Images not deleted (the ``images`` quota)."""
    imageVersions: int
    """Versions of those images that are not deleted."""
    buildsInProgress: int
    uploadedArtifacts: int
    """Uploaded zips kept, other files in the upload folder and uploads in flight (the ``uploadedArtifacts``
    quota)."""
    uploadedArtifactBytes: int
    """Their bytes, an upload in flight by its Content-Length or the bytes received (``uploadedArtifactBytes``)."""
    concurrentUploads: int
    """Uploads streaming now (the ``concurrentUploads`` quota)."""
    storageBytes: StorageBytes


class GetAccountResponse(ApiModel):
    """The caller's account, the access key it called with, its quotas and its usage."""

    accountId: str
    accessKeyId: str | None = None
    quotas: dict[str, Quota]
    usage: AccountUsage


def quota_table(limits: Quotas) -> dict[str, Quota]:
    """The account quotas of ``limits`` under the names the API's refusals use."""
    return {
        "microvms": Quota(
            value=limits.max_microvms,
            unit="MicroVMs",
            quotaCode=quotas.MICROVM_COUNT_QUOTA_CODE,
            error=QUOTA_ERROR,
            description="MicroVMs that are not TERMINATED (SUSPENDED ones count); RunMicrovm beyond it is refused",
        ),
        "allocatedMemoryMiB": Quota(
            value=limits.max_memory_mib,
            unit="MiB",
            quotaCode=quotas.MEMORY_QUOTA_CODE,
            error=QUOTA_ERROR,
            description="Memory of the MicroVMs that are not TERMINATED (SUSPENDED ones hold theirs)",
        ),
        "images": Quota(
            value=limits.max_images,
            unit="images",
            quotaCode=IMAGE_COUNT_QUOTA_CODE,
            error=QUOTA_ERROR,
            description="Images not deleted; CreateMicrovmImage beyond it is refused",
        ),
        "runMicrovmCallsPerSecond": Quota(
            value=limits.run_per_second,
            unit="calls per second",
            quotaCode=quotas.RUN_RATE_QUOTA_CODE,
            error=RATE_ERROR,
            description="RunMicrovm calls per second on average; a faster caller is told when to retry",
        ),
        "runMicrovmBurst": Quota(
            value=limits.run_burst,
            unit="calls",
            quotaCode=quotas.RUN_RATE_QUOTA_CODE,
            error=RATE_ERROR,
            description="RunMicrovm calls accepted at once before the per-second rate applies",
        ),
        "uploadedArtifacts": Quota(
            value=limits.max_artifacts,
            unit="zips",
            quotaCode=ARTIFACT_COUNT_QUOTA_CODE,
            error=QUOTA_ERROR,
            description="Uploaded code artifacts kept (uploads in flight count); DELETE /ember/artifacts/{sha256} "
            "frees one",
        ),
        "uploadedArtifactBytes": Quota(
            value=limits.max_artifact_storage_bytes,
            unit="bytes",
            quotaCode=ARTIFACT_STORAGE_QUOTA_CODE,
            error=QUOTA_ERROR,
            description="Bytes of the uploaded code artifacts kept and in flight; an upload passing it is cut off",
        ),
        "concurrentUploads": Quota(
            value=limits.max_concurrent_uploads,
            unit="uploads",
            quotaCode=CONCURRENT_UPLOADS_QUOTA_CODE,
            error=RATE_ERROR,
            description="Uploads streaming at the same time; one more is told when to retry",
        ),
    }


def count_usage(session: Session, account_id: str, uploads: UploadUsage = NO_UPLOADS) -> AccountUsage:
    """The usage of ``account_id`` as stored, with ``uploads`` (``UploadQuotas.usage``) as its uploads."""
    by_state = dict.fromkeys((str(state) for state in MicrovmState), 0)
    rows = session.execute(
        select(Microvm.state, func.count()).where(Microvm.account_id == account_id).group_by(Microvm.state)
    )
    for state, count in rows:
        by_state[str(state)] = int(count)
    live_versions = (
        select(ImageVersion.id)
        .join(Image, Image.id == ImageVersion.image_id)
        .where(
            Image.account_id == account_id,
            Image.deleted.is_(False),
            ImageVersion.state != ImageVersionState.DELETED,
        )
    )
    version_count = session.scalar(select(func.count()).select_from(live_versions.subquery()))
    building = session.scalar(
        select(func.count())
        .select_from(Build)
        .where(Build.version_id.in_(live_versions), Build.state.in_([BuildState.PENDING, BuildState.IN_PROGRESS]))
    )
    per_build = func.coalesce(Build.memory_snapshot_size_bytes, 0) + func.coalesce(Build.disk_snapshot_size_bytes, 0)
    snapshot_bytes = session.scalar(
        select(func.coalesce(func.sum(per_build), 0)).where(
            Build.version_id.in_(live_versions), Build.state == BuildState.SUCCESSFUL
        )
    )
    return AccountUsage(
        microvmsByState=by_state,
        microvms=quotas.live_microvms(session, account_id),
        allocatedMemoryMiB=microvms.allocated_memory_mib(session, account_id),
        images=images.count_images(session, account_id),
        imageVersions=int(version_count or 0),
        buildsInProgress=int(building or 0),
        uploadedArtifacts=uploads.artifacts,
        uploadedArtifactBytes=uploads.artifact_bytes,
        concurrentUploads=uploads.uploads_in_flight,
        storageBytes=StorageBytes(uploadedArtifacts=uploads.stored_bytes, imageSnapshots=int(snapshot_bytes or 0)),
    )


async def get_account(call: Call) -> GetAccountResponse:
    """GetAccount: the caller's account id and access key id, the account's quotas and its usage."""
    call.parse(GetAccountRequest)
    folder = account_folder(call.ctx, call.account_id)
    uploads = NO_UPLOADS if folder is None else await call.request.app[UPLOAD_QUOTAS].usage(folder, call.account_id)
    usage = await call.read(count_usage, call.account_id, uploads)
    return GetAccountResponse(
        accountId=call.account_id,
        accessKeyId=call.access_key_id,
        quotas=quota_table(call.ctx.quotas),
        usage=usage,
    )
