"""Initial schema: accounts, keys, images, versions, builds, MicroVMs and their events, tags, idempotency, logs.

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner_kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logs")),
        sa.UniqueConstraint("owner_kind", "owner_id", "seq", name=op.f("uq_logs_owner_kind_owner_id_seq")),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("secret_access_key", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_access_keys_account_id_accounts")),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_keys")),
    )
    op.create_index(op.f("ix_access_keys_account_id"), "access_keys", ["account_id"], unique=False)
    op.create_table(
        "idempotency",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("client_token", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_idempotency_account_id_accounts")),
        sa.PrimaryKeyConstraint("account_id", "operation", "client_token", name=op.f("pk_idempotency")),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("latest_active_version", sa.String(length=32), nullable=True),
        sa.Column("latest_failed_version", sa.String(length=32), nullable=True),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_images_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
    )
    op.create_index("ix_images_account_id_created_at_id", "images", ["account_id", "created_at", "id"], unique=False)
    op.create_index(
        "uq_images_account_id_name_live",
        "images",
        ["account_id", "name"],
        unique=True,
        sqlite_where=sa.text("deleted = 0"),
        postgresql_where=sa.text("NOT deleted"),
    )
    op.create_table(
        "tags",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("resource_arn", sa.String(length=2048), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_tags_account_id_accounts")),
        sa.PrimaryKeyConstraint("account_id", "resource_arn", "key", name=op.f("pk_tags")),
    )
    op.create_table(
        "image_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("disk_size_mib", sa.Integer(), nullable=False),
        sa.Column("artifact_dir", sa.String(length=1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_image_versions_image_id_images")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_versions")),
        sa.UniqueConstraint("image_id", "number", name=op.f("uq_image_versions_image_id_number")),
        sa.UniqueConstraint("image_id", "version", name=op.f("uq_image_versions_image_id_version")),
    )
    op.create_index(op.f("ix_image_versions_image_id"), "image_versions", ["image_id"], unique=False)
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("build_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("architecture", sa.String(length=32), nullable=False),
        sa.Column("chipset", sa.String(length=32), nullable=False),
        sa.Column("chipset_generation", sa.String(length=64), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("memory_snapshot_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("disk_snapshot_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("code_install_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"], ["image_versions.id"], name=op.f("fk_builds_version_id_image_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_builds")),
        sa.UniqueConstraint("build_id", name=op.f("uq_builds_build_id")),
    )
    op.create_index(op.f("ix_builds_version_id"), "builds", ["version_id"], unique=False)
    op.create_table(
        "microvms",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("image_name", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("image_version", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("endpoint", sa.String(length=2048), nullable=False),
        sa.Column("execution_role_arn", sa.String(length=2048), nullable=True),
        sa.Column("idle_policy", sa.JSON(), nullable=True),
        sa.Column("logging", sa.JSON(), nullable=True),
        sa.Column("maximum_duration_s", sa.Integer(), nullable=False),
        sa.Column("ingress_connectors", sa.JSON(), nullable=False),
        sa.Column("egress_connectors", sa.JSON(), nullable=False),
        sa.Column("run_hook_payload", sa.Text(), nullable=True),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("host_id", sa.String(length=128), nullable=True),
        sa.Column("host_dir", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_microvms_account_id_accounts")),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_microvms_image_id_images")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["image_versions.id"], name=op.f("fk_microvms_version_id_image_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_microvms")),
    )
    op.create_index(
        "ix_microvms_account_id_created_at_id", "microvms", ["account_id", "created_at", "id"], unique=False
    )
    op.create_index(op.f("ix_microvms_image_id"), "microvms", ["image_id"], unique=False)
    op.create_index(op.f("ix_microvms_state"), "microvms", ["state"], unique=False)
    op.create_table(
        "microvm_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("microvm_id", sa.String(length=64), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=True),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["microvm_id"], ["microvms.id"], name=op.f("fk_microvm_events_microvm_id_microvms")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_microvm_events")),
    )
    op.create_index("ix_microvm_events_microvm_id_id", "microvm_events", ["microvm_id", "id"], unique=False)


def downgrade() -> None:
    """Drop every table of the first schema."""
    op.drop_index("ix_microvm_events_microvm_id_id", table_name="microvm_events")
    op.drop_table("microvm_events")
    op.drop_index("ix_microvms_state", table_name="microvms")
    op.drop_index("ix_microvms_image_id", table_name="microvms")
    op.drop_index("ix_microvms_account_id_created_at_id", table_name="microvms")
    op.drop_table("microvms")
    op.drop_index("ix_builds_version_id", table_name="builds")
    op.drop_table("builds")
    op.drop_index("ix_image_versions_image_id", table_name="image_versions")
    op.drop_table("image_versions")
    op.drop_table("tags")
    op.drop_index("uq_images_account_id_name_live", table_name="images")
    op.drop_index("ix_images_account_id_created_at_id", table_name="images")
    op.drop_table("images")
    op.drop_table("idempotency")
    op.drop_index("ix_access_keys_account_id", table_name="access_keys")
    op.drop_table("access_keys")
    op.drop_table("logs")
    op.drop_table("accounts")
