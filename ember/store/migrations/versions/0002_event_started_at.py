"""MicroVM events record when a move that takes time began (``microvm_events.started_at``: a resume's start).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``started_at`` column (existing events keep None: their start was not recorded)."""
    with op.batch_alter_table("microvm_events") as batch:
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop ``started_at``."""
    with op.batch_alter_table("microvm_events") as batch:
        batch.drop_column("started_at")
