"""Images: create, look up (tenant-scoped), list, delete, and the image state derived from its versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ember.contract.arns import RESOURCE_TYPE_IMAGE
from ember.contract.enums import ImageState, ImageVersionState, ImageVersionStatus
from ember.store._types import utcnow
from ember.store.errors import NameTaken, RecordNotFound
from ember.store.models import Image, ImageVersion
from ember.store.paging import Page, paginate

_DELETION_STATES = frozenset({ImageState.DELETING, ImageState.DELETE_FAILED, ImageState.DELETED})
_GONE_VERSION_STATES = (ImageVersionState.DELETING, ImageVersionState.DELETED)


def create_image(session: Session, account_id: str, name: str, *, now: datetime | None = None) -> Image:
    """A new image in state CREATING with no versions yet; raises ``NameTaken`` if a live image has ``name``."""
    if find_image(session, account_id, name) is not None:
        raise NameTaken(name)
    now = now or utcnow()
    image = Image(
        account_id=account_id,
        name=name,
        state=ImageState.CREATING,
        next_version=1,
        deleted=False,
        created_at=now,
        updated_at=now,
    )
    session.add(image)
    session.flush()
    return image


def find_image(
    session: Session, account_id: str, name: str, *, include_deleted: bool = False, for_update: bool = False
) -> Image | None:
    """The live image ``name`` in ``account_id`` (or, with ``include_deleted``, the newest one ever), or None."""
    stmt = select(Image).where(Image.account_id == account_id, Image.name == name)
    if not include_deleted:
        stmt = stmt.where(Image.deleted.is_(False))
    stmt = stmt.order_by(Image.id.desc()).limit(1)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def get_image(
    session: Session, account_id: str, name: str, *, include_deleted: bool = False, for_update: bool = False
) -> Image:
    """Like ``find_image`` but raises ``RecordNotFound`` (→ ResourceNotFoundException)."""
    image = find_image(session, account_id, name, include_deleted=include_deleted, for_update=for_update)
    if image is None:
        raise RecordNotFound(RESOURCE_TYPE_IMAGE, name)
    return image


def list_images(
    session: Session,
    account_id: str,
    *,
    name_filter: str | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> Page[Image]:
    """A page of the account's live images, oldest first; ``name_filter`` keeps names containing it (case matters)."""
    stmt = select(Image).where(Image.account_id == account_id, Image.deleted.is_(False))
    if name_filter:
        # Case-sensitive literal substring on both backends (SQLite's LIKE ignores ASCII case; PostgreSQL's does not).
        position = func.strpos if session.get_bind().dialect.name == "postgresql" else func.instr
        stmt = stmt.where(position(Image.name, name_filter) > 0)
    return paginate(
        session,
        stmt,
        created_col=Image.created_at,
        id_col=Image.id,
        max_results=max_results,
        next_token=next_token,
    )


def count_images(session: Session, account_id: str) -> int:
    """How many live images the account has (for an image-count quota)."""
    stmt = select(func.count()).select_from(Image).where(Image.account_id == account_id, Image.deleted.is_(False))
    return int(session.scalar(stmt) or 0)


def set_image_state(session: Session, image: Image, state: ImageState, *, now: datetime | None = None) -> Image:
    """Set a deletion state (DELETING, DELETE_FAILED, DELETED); DELETED frees the name for a new image.

    Other states are derived from the versions by ``refresh_image`` and cannot be set directly.
    """
    if state not in _DELETION_STATES:
        raise ValueError(f"{state} is derived from the image's versions; call refresh_image")
    now = now or utcnow()
    image.state = state
    image.updated_at = now
    if state is ImageState.DELETED:
        image.deleted = True
        image.deleted_at = now
    session.flush()
    return image


def refresh_image(session: Session, image: Image, *, now: datetime | None = None) -> Image:
    """Recompute the image's state and latest-version pointers from its versions.

    ``latestActiveImageVersion``: the newest version that built successfully and is ACTIVE (what RunMicrovm uses
    without a version). ``latestFailedImageVersion``: the newest FAILED one. ``state``: from the newest version:
    building → CREATING (version 1) or UPDATING; SUCCESSFUL → CREATED/UPDATED; FAILED → CREATE_/UPDATE_FAILED.
    An image being deleted keeps its deletion state.
    """
    versions = list(
        session.scalars(
            select(ImageVersion)
            .where(ImageVersion.image_id == image.id, ImageVersion.state.not_in(_GONE_VERSION_STATES))
            .order_by(ImageVersion.number.desc())
        )
    )
    active = next(
        (v for v in versions if v.state is ImageVersionState.SUCCESSFUL and v.status is ImageVersionStatus.ACTIVE),
        None,
    )
    failed = next((v for v in versions if v.state is ImageVersionState.FAILED), None)
    image.latest_active_version = active.version if active else None
    image.latest_failed_version = failed.version if failed else None
    if versions and image.state not in _DELETION_STATES:
        newest = versions[0]
        first = newest.number == 1
        if newest.state is ImageVersionState.SUCCESSFUL:
            image.state = ImageState.CREATED if first else ImageState.UPDATED
        elif newest.state is ImageVersionState.FAILED:
            image.state = ImageState.CREATE_FAILED if first else ImageState.UPDATE_FAILED
        else:
            image.state = ImageState.CREATING if first else ImageState.UPDATING
    image.updated_at = now or utcnow()
    session.flush()
    return image
