"""Initial schema: meetings, participants, samples, state changes, alerts, consent events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# 64-bit ids where rows are numerous; SQLite only autoincrements INTEGER PRIMARY KEY.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _participant_fk(table: str, nullable: bool) -> sa.Column:
    return sa.Column(
        "participant_id",
        sa.Integer(),
        sa.ForeignKey(
            "participants.id",
            name=f"fk_{table}_participant_id_participants",
            ondelete="CASCADE",
        ),
        nullable=nullable,
    )


def _meeting_fk(table: str) -> sa.Column:
    return sa.Column(
        "meeting_id",
        sa.String(64),
        sa.ForeignKey("meetings.id", name=f"fk_{table}_meeting_id_meetings", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("room", sa.String(255), nullable=False),
        sa.Column("title", sa.String(255), nullable=True),
        sa.Column("teacher", sa.String(255), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("sample_period_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_meetings"),
    )
    op.create_index("ix_meetings_started_at", "meetings", ["started_at"])
    op.create_index("ix_meetings_teacher_started_at", "meetings", ["teacher", "started_at"])
    op.create_index("ix_meetings_room_started_at", "meetings", ["room", "started_at"])

    op.create_table(
        "participants",
        sa.Column("id", sa.Integer(), nullable=False),
        _meeting_fk("participants"),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("platform_id", sa.String(255), nullable=True),
        sa.Column("joined_at", sa.Float(), nullable=False),
        sa.Column("left_at", sa.Float(), nullable=True),
        sa.Column("opted_out", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_participants"),
        sa.UniqueConstraint(
            "meeting_id", "display_name", name="uq_participants_meeting_id_display_name"
        ),
    )
    op.create_index("ix_participants_display_name", "participants", ["display_name"])

    op.create_table(
        "samples",
        sa.Column("id", BIG_ID, nullable=False),
        _participant_fk("samples", nullable=False),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("p_interested", sa.Float(), nullable=True),
        sa.Column("p_bored", sa.Float(), nullable=True),
        sa.Column("p_confused", sa.Float(), nullable=True),
        sa.Column("face_present", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_samples"),
    )
    op.create_index("ix_samples_participant_id_t", "samples", ["participant_id", "t"])
    op.create_index("ix_samples_participant_id_state", "samples", ["participant_id", "state"])

    op.create_table(
        "state_changes",
        sa.Column("id", BIG_ID, nullable=False),
        _participant_fk("state_changes", nullable=False),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_state_changes"),
    )
    op.create_index("ix_state_changes_participant_id_t", "state_changes", ["participant_id", "t"])

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        _meeting_fk("alerts"),
        _participant_fk("alerts", nullable=True),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_meeting_id_t", "alerts", ["meeting_id", "t"])
    op.create_index("ix_alerts_participant_id", "alerts", ["participant_id"])

    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        _meeting_fk("consent_events"),
        _participant_fk("consent_events", nullable=True),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consent_events"),
    )
    op.create_index("ix_consent_events_meeting_id_t", "consent_events", ["meeting_id", "t"])
    op.create_index("ix_consent_events_participant_id", "consent_events", ["participant_id"])


def downgrade() -> None:
    for table in (
        "consent_events",
        "alerts",
        "state_changes",
        "samples",
        "participants",
        "meetings",
    ):
        op.drop_table(table)
