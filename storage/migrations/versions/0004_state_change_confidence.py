"""The confidence of each state change: the smoothed probability of the state it entered
(nullable: older rows, ``no_face`` and the attention mode's ``present`` have none).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: rewrites nothing on PostgreSQL or SQLite.
    op.add_column("state_changes", sa.Column("confidence", sa.Float(), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("state_changes") as batch:
        batch.drop_column("confidence")
