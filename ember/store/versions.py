"""Image versions: numbered "1", "2", ... per image, each an immutable configuration with a state and a status.

Functions take an ``Image`` row already looked up in the caller's account (``images.get_image``), which is what
scopes them to the tenant. Every change to a version refreshes its image's derived state and pointers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ember.contract.enums import ImageVersionState, ImageVersionStatus
from ember.contract.images import ImageConfig
from ember.store._types import utcnow
from ember.store.errors import RecordNotFound
from ember.store.images import refresh_image
from ember.store.models import Image, ImageVersion
from ember.store.paging import Page, paginate

RESOURCE_TYPE_VERSION = "MicrovmImageVersion"


def create_version(session: Session, image: Image, config: ImageConfig, *, now: datetime | None = None) -> ImageVersion:
    """The image's next version (PENDING, INACTIVE) holding ``config``; the image becomes CREATING/UPDATING.

    The image row is locked while its counter moves, so concurrent updates get distinct numbers.
    """
    now = now or utcnow()
    locked = session.scalars(select(Image).where(Image.id == image.id).with_for_update()).one()
    number = locked.next_version
    locked.next_version = number + 1
    version = ImageVersion(
        image_id=locked.id,
        number=number,
        version=str(number),
        config=config.image_config().to_wire(),
        state=ImageVersionState.PENDING,
        status=ImageVersionStatus.INACTIVE,
        memory_mib=config.memory_mib(),
        disk_size_mib=config.disk_size_mib(),
        created_at=now,
        updated_at=now,
    )
    session.add(version)
    session.flush()
    refresh_image(session, locked, now=now)
    return version


def find_version(session: Session, image: Image, version: str, *, include_deleted: bool = False) -> ImageVersion | None:
    """Version ``version`` (the wire string) of ``image``, or None; deleted versions only with ``include_deleted``."""
    stmt = select(ImageVersion).where(ImageVersion.image_id == image.id, ImageVersion.version == version)
    if not include_deleted:
        stmt = stmt.where(ImageVersion.state != ImageVersionState.DELETED)
    return session.scalars(stmt).first()


def get_version(session: Session, image: Image, version: str, *, include_deleted: bool = False) -> ImageVersion:
    """Like ``find_version`` but raises ``RecordNotFound``."""
    found = find_version(session, image, version, include_deleted=include_deleted)
    if found is None:
        raise RecordNotFound(RESOURCE_TYPE_VERSION, f"{image.name}:{version}")
    return found


def get_version_by_id(session: Session, version_id: int) -> ImageVersion:
    """A version by its row id (for internal callers holding a ``Microvm.version_id`` or ``Build.version_id``)."""
    found = session.get(ImageVersion, version_id)
    if found is None:
        raise RecordNotFound(RESOURCE_TYPE_VERSION, str(version_id))
    return found


def list_versions(
    session: Session, image: Image, *, max_results: int | None = None, next_token: str | None = None
) -> Page[ImageVersion]:
    """A page of the image's versions that are not DELETED, oldest first."""
    stmt = select(ImageVersion).where(
        ImageVersion.image_id == image.id, ImageVersion.state != ImageVersionState.DELETED
    )
    return paginate(
        session,
        stmt,
        created_col=ImageVersion.created_at,
        id_col=ImageVersion.id,
        max_results=max_results,
        next_token=next_token,
    )


def resolve_launch_version(session: Session, image: Image, version: str | None) -> ImageVersion:
    """The version RunMicrovm launches: ``version`` if given, else the image's latest active one.

    Raises ``RecordNotFound`` if there is no such version (or no active one). Whether the version may launch
    (SUCCESSFUL and ACTIVE) is the caller's check, so it can answer Conflict rather than NotFound.
    """
    if version is None:
        if image.latest_active_version is None:
            raise RecordNotFound(RESOURCE_TYPE_VERSION, image.name, f"image {image.name} has no active version")
        version = image.latest_active_version
    return get_version(session, image, version)


def set_version_state(
    session: Session,
    version: ImageVersion,
    state: ImageVersionState,
    reason: str | None = None,
    *,
    now: datetime | None = None,
) -> ImageVersion:
    """Set the version's state and ``stateReason``; SUCCESSFUL also makes it ACTIVE (§10). Refreshes the image."""
    now = now or utcnow()
    version.state = state
    version.state_reason = reason
    if state is ImageVersionState.SUCCESSFUL:
        version.status = ImageVersionStatus.ACTIVE
    version.updated_at = now
    session.flush()
    _refresh_owner(session, version, now)
    return version


def set_version_status(
    session: Session, version: ImageVersion, status: ImageVersionStatus, *, now: datetime | None = None
) -> ImageVersion:
    """Allow (ACTIVE) or block (INACTIVE) launches from the version. Refreshes the image's pointers."""
    now = now or utcnow()
    version.status = status
    version.updated_at = now
    session.flush()
    _refresh_owner(session, version, now)
    return version


def set_version_artifact_dir(session: Session, version: ImageVersion, artifact_dir: str) -> ImageVersion:
    """Record where the host keeps the version's rootfs and snapshot."""
    version.artifact_dir = artifact_dir
    session.flush()
    return version


def version_config(version: ImageVersion) -> ImageConfig:
    """The version's stored configuration as the contract model."""
    return ImageConfig.model_validate(version.config)


def _refresh_owner(session: Session, version: ImageVersion, now: datetime) -> None:
    image = session.get(Image, version.image_id)
    if image is not None:
        refresh_image(session, image, now=now)
