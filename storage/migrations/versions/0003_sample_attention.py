"""Attention per sample: head yaw and pitch, eyes open, looking away (nullable: older rows and
samples without a landmark reading have none).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without a default: adding them rewrites nothing on PostgreSQL or SQLite.
    op.add_column("samples", sa.Column("yaw", sa.Float(), nullable=True))
    op.add_column("samples", sa.Column("pitch", sa.Float(), nullable=True))
    op.add_column("samples", sa.Column("eyes_open", sa.Boolean(), nullable=True))
    op.add_column("samples", sa.Column("looking_away", sa.Boolean(), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("samples") as batch:
        for name in ("looking_away", "eyes_open", "pitch", "yaw"):
            batch.drop_column(name)
