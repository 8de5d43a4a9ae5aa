"""The stored history: meetings, participants, engagement samples, state changes, alerts, consent.

Times are UTC Unix seconds in double-precision floats (``t``, ``*_at``): one representation the
live path already has (``engine.types`` uses seconds), identical on SQLite and PostgreSQL, cheap
to index and to aggregate into buckets. No images are ever stored.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.db import Base

#: Longest display name, room, title or platform id accepted (rows.py checks it before the DB does).
NAME_LENGTH = 255

# 64-bit ids where rows are numerous; SQLite only aliases ROWID (and autoincrements) for INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Meeting(Base):
    """One class session the bot attended; the id is chosen by the bot so it never waits for us."""

    __tablename__ = "meetings"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    room: Mapped[str] = mapped_column(String(NAME_LENGTH))
    title: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    teacher: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    #: Seconds between two samples of one person; time in a state = samples × this.
    sample_period_s: Mapped[float] = mapped_column(Float, default=1.0)

    participants: Mapped[list[Participant]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("ix_meetings_started_at", "started_at"),
        Index("ix_meetings_teacher_started_at", "teacher", "started_at"),
        Index("ix_meetings_room_started_at", "room", "started_at"),
    )


class Participant(Base):
    """A student in one meeting. Rejoining under the same display name is the same participant."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    platform_id: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    joined_at: Mapped[float] = mapped_column(Float)
    left_at: Mapped[float | None] = mapped_column(Float)
    #: Opted out: their samples, state changes and alerts are deleted and no longer recorded.
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    meeting: Mapped[Meeting] = relationship(back_populates="participants")

    __table_args__ = (
        UniqueConstraint("meeting_id", "display_name"),
        Index("ix_participants_display_name", "display_name"),
    )


class Sample(Base):
    """One person's engagement and attention at one time: about one row per second per person."""

    __tablename__ = "samples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    t: Mapped[float] = mapped_column(Float)
    #: Model probabilities; NULL while no face is visible (there is nothing to score).
    p_interested: Mapped[float | None] = mapped_column(Float)
    p_bored: Mapped[float | None] = mapped_column(Float)
    p_confused: Mapped[float | None] = mapped_column(Float)
    face_present: Mapped[bool] = mapped_column(Boolean)
    #: An ``engine.types.EngagementState`` value (``present`` in the attention mode).
    state: Mapped[str] = mapped_column(String(16))
    #: Attention over the sample period: head yaw and pitch in degrees (``engine.types.Attention``
    #: conventions), eyes open, head turned away. NULL without a reading (no face, or a face
    #: stage without landmarks; rows written before these columns existed).
    yaw: Mapped[float | None] = mapped_column(Float)
    pitch: Mapped[float | None] = mapped_column(Float)
    eyes_open: Mapped[bool | None] = mapped_column(Boolean)
    looking_away: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        # Timelines and deletes by participant; (participant, state) answers summaries and
        # histories from the index alone.
        Index("ix_samples_participant_id_t", "participant_id", "t"),
        Index("ix_samples_participant_id_state", "participant_id", "state"),
    )


class StateChange(Base):
    """The smoothed state of one person changed at ``t``."""

    __tablename__ = "state_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    t: Mapped[float] = mapped_column(Float)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    #: The smoothed probability of ``to_state`` when it was entered (``None``: not a model's
    #: judgement — ``no_face``, ``present`` — or a row from before it was kept).
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_state_changes_participant_id_t", "participant_id", "t"),)


class Alert(Base):
    """A message the bot whispered to the teacher, about one student or the whole class."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    #: NULL for a class-wide alert.
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE")
    )
    t: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    delivered: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        Index("ix_alerts_meeting_id_t", "meeting_id", "t"),
        Index("ix_alerts_participant_id", "participant_id"),
    )


class ConsentEvent(Base):
    """The privacy notice was posted (meeting-wide) or one participant opted out or back in."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE")
    )
    t: Mapped[float] = mapped_column(Float)
    #: A ``storage.rows.ConsentKind`` value: notice, opt_out, opt_in.
    kind: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_consent_events_meeting_id_t", "meeting_id", "t"),
        Index("ix_consent_events_participant_id", "participant_id"),
    )


class ClassRoom(Base):
    """A built-in room opened by ``classpulse serve`` (``POST /api/rooms``): kept so that open
    rooms, with their teacher links, survive a restart. ``closed_at`` set: closed for good."""

    __tablename__ = "rooms"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(NAME_LENGTH))
    #: The secret of the teacher link; it must be shown again after a restart, so it is stored
    #: as is (like the link itself, it grants the teacher's view of one room and nothing else).
    #: Emptied when the room closes.
    teacher_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_rooms_closed_at", "closed_at"),)
