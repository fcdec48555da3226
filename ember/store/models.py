"""The database schema as typed SQLAlchemy ORM classes; ``migrations/`` creates exactly this (a test checks).

Every tenant-owned row carries ``account_id``; the repository functions filter on it so another account's row is
simply not found. Enum columns hold the contract's wire strings. Times are aware UTC datetimes.

Rows are returned to callers detached from their session (``expire_on_commit=False``): read their columns
freely, but load related rows through the repository functions, not through relationships.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ember.contract.enums import (
    Architecture,
    BuildState,
    Chipset,
    ImageState,
    ImageVersionState,
    ImageVersionStatus,
    MicrovmState,
)
from ember.store._types import EnumText, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so migrations can name what they alter (SQLite batch mode needs them)."""


class Base(DeclarativeBase):
    """Declarative base holding Ember's metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Account(Base):
    """A tenant: a 12-digit account id that owns keys, images and MicroVMs."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    created_at: Mapped[datetime]


class AccessKey(Base):
    """A SigV4 access key pair belonging to one account."""

    __tablename__ = "access_keys"

    access_key_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret_access_key: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[datetime]


class Image(Base):
    """A named image in an account; its configuration lives on its versions.

    ``state``, ``latest_active_version`` and ``latest_failed_version`` are derived from the versions by
    ``ember.store.images.refresh_image`` whenever a version changes. A deleted image keeps its row (``deleted``)
    so deleting it again succeeds; its name may be reused by a new image.
    """

    __tablename__ = "images"
    __table_args__ = (
        Index(
            "uq_images_account_id_name_live",
            "account_id",
            "name",
            unique=True,
            sqlite_where=text("deleted = 0"),
            postgresql_where=text("NOT deleted"),
        ),
        Index("ix_images_account_id_created_at_id", "account_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[ImageState] = mapped_column(EnumText(ImageState))
    latest_active_version: Mapped[str | None] = mapped_column(String(32))
    latest_failed_version: Mapped[str | None] = mapped_column(String(32))
    next_version: Mapped[int] = mapped_column(Integer, default=1)
    """Number the next version gets ("1", "2", ...); numbers are never reused, even after a version is deleted."""
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class ImageVersion(Base):
    """An immutable configuration snapshot of an image, with its build outcome and launch status."""

    __tablename__ = "image_versions"
    __table_args__ = (
        UniqueConstraint("image_id", "number"),
        UniqueConstraint("image_id", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    """The wire ``imageVersion``: ``str(number)``."""
    config: Mapped[dict[str, Any]]
    """The version's ``ImageConfig`` as its wire JSON (``ImageConfig.to_wire()``)."""
    state: Mapped[ImageVersionState] = mapped_column(EnumText(ImageVersionState))
    status: Mapped[ImageVersionStatus] = mapped_column(EnumText(ImageVersionStatus))
    state_reason: Mapped[str | None] = mapped_column(Text)
    memory_mib: Mapped[int] = mapped_column(Integer)
    disk_size_mib: Mapped[int] = mapped_column(Integer)
    artifact_dir: Mapped[str | None] = mapped_column(String(1024))
    """Where the host keeps the version's rootfs and snapshot (``$EMBER_HOME/images/<name>/<version>``)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Build(Base):
    """One build of a version for one (architecture, chipset, chipsetGeneration)."""

    __tablename__ = "builds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    build_id: Mapped[str] = mapped_column(String(64), unique=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("image_versions.id"), index=True)
    state: Mapped[BuildState] = mapped_column(EnumText(BuildState))
    architecture: Mapped[Architecture] = mapped_column(EnumText(Architecture))
    chipset: Mapped[Chipset] = mapped_column(EnumText(Chipset))
    chipset_generation: Mapped[str] = mapped_column(String(64))
    state_reason: Mapped[str | None] = mapped_column(Text)
    memory_snapshot_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    disk_snapshot_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    code_install_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Microvm(Base):
    """One MicroVM. ``state`` changes only through ``ember.store.transitions.transition``."""

    __tablename__ = "microvms"
    __table_args__ = (Index("ix_microvms_account_id_created_at_id", "account_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    image_name: Mapped[str] = mapped_column(String(64))
    """Copied from the image (names never change) so responses need no join."""
    version_id: Mapped[int] = mapped_column(ForeignKey("image_versions.id"))
    image_version: Mapped[str] = mapped_column(String(32))
    state: Mapped[MicrovmState] = mapped_column(EnumText(MicrovmState), index=True)
    state_reason: Mapped[str | None] = mapped_column(Text)
    endpoint: Mapped[str] = mapped_column(String(2048))
    execution_role_arn: Mapped[str | None] = mapped_column(String(2048))
    idle_policy: Mapped[dict[str, Any] | None]
    """The ``IdlePolicy`` wire JSON, or None: never auto-suspended (§10)."""
    logging: Mapped[dict[str, Any] | None]
    maximum_duration_s: Mapped[int] = mapped_column(Integer)
    ingress_connectors: Mapped[list[Any]]
    egress_connectors: Mapped[list[Any]]
    run_hook_payload: Mapped[str | None] = mapped_column(Text)
    memory_mib: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    """When RunMicrovm accepted it: the wire ``startedAt`` and the start of ``maximumDurationInSeconds``."""
    updated_at: Mapped[datetime]
    terminated_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime]
    """Last inbound request through the gateway (or open connection seen); the idle clock runs from here."""
    suspended_at: Mapped[datetime | None]
    host_id: Mapped[str | None] = mapped_column(String(128))
    """Which host runs (or holds the snapshot of) the VM; None on a single-machine install."""
    host_dir: Mapped[str | None] = mapped_column(String(1024))
    """The VM's directory on the host (``$EMBER_HOME/vms/<id>``)."""


class MicrovmEvent(Base):
    """One MicroVM state transition (creation is the transition from nothing to PENDING)."""

    __tablename__ = "microvm_events"
    __table_args__ = (Index("ix_microvm_events_microvm_id_id", "microvm_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    microvm_id: Mapped[str] = mapped_column(ForeignKey("microvms.id"))
    from_state: Mapped[MicrovmState | None] = mapped_column(EnumText(MicrovmState))
    to_state: Mapped[MicrovmState] = mapped_column(EnumText(MicrovmState))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    """When the work that ended in this move began, for a move that is not instantaneous: a resume (SUSPENDED →
    RUNNING) records when it was asked for. None otherwise. Kept on the event only: a resuming MicroVM is still
    SUSPENDED to clients (CONTRACT.md §2 has no RESUMING state)."""


class Tag(Base):
    """One tag of a taggable resource, keyed by the resource's ARN."""

    __tablename__ = "tags"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    resource_arn: Mapped[str] = mapped_column(String(2048), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class IdempotencyRecord(Base):
    """The first successful call made with a ``clientToken``: what it asked (hash) and what it created."""

    __tablename__ = "idempotency"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_token: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]


class LogLine(Base):
    """One line of a MicroVM's app log or a build's log; ``seq`` counts from 1 per owner."""

    __tablename__ = "logs"
    __table_args__ = (UniqueConstraint("owner_kind", "owner_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_kind: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    stream: Mapped[str] = mapped_column(String(16))
    line: Mapped[str] = mapped_column(Text)
