"""Reading the history: functions returning ``select()``, and small helpers that run them.

The aggregate queries read ``samples`` through the (participant_id, state) index alone, so a
meeting summary or a student's history costs one index range per participant, not a table scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, Integer, Select, case, cast, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from engine.types import EngagementState
from storage.attention import eyes_closed_count, looking_away_count, select_attention_counts
from storage.models import Alert, Meeting, Participant, Sample
from storage.results import (
    AlertInfo,
    MeetingInfo,
    MeetingSummary,
    StudentMeeting,
    StudentSummary,
    TimelineBucket,
    UnknownMeetingError,
    UnknownStudentError,
)

_STATES = tuple(EngagementState)

TimeLike = datetime | float | int


class bucket_index(FunctionElement[int]):
    """``floor(x)`` as an integer on every backend (SQLite may lack the math functions)."""

    type = Integer()
    name = "bucket_index"
    inherit_cache = True


@compiles(bucket_index)
def _bucket_index_default(element: bucket_index, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(bucket_index, "sqlite")
def _bucket_index_sqlite(element: bucket_index, compiler: SQLCompiler, **kw: Any) -> str:
    # Callers only pass x >= 0, where truncation is floor.
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


# -- select() builders ----------------------------------------------------------------------


def select_meetings(
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    teacher: str | None = None,
    room: str | None = None,
    platform: str | None = None,
) -> Select:
    """Meetings that started in ``[since, until)``, filtered by teacher / room, oldest first."""
    num_participants = (
        select(func.count(Participant.id))
        .where(Participant.meeting_id == Meeting.id)
        .correlate(Meeting)
        .scalar_subquery()
    )
    query = select(Meeting, num_participants.label("num_participants")).order_by(
        Meeting.started_at, Meeting.id
    )
    if since is not None:
        query = query.where(Meeting.started_at >= to_unix(since))
    if until is not None:
        query = query.where(Meeting.started_at < to_unix(until))
    if teacher is not None:
        query = query.where(Meeting.teacher == teacher)
    if room is not None:
        query = query.where(Meeting.room == room)
    if platform is not None:
        query = query.where(Meeting.platform == platform)
    return query


def select_state_counts(participant_ids: Any) -> Select:
    """(participant id, state, samples) for ``participant_ids`` (a list of ids or a select)."""
    return (
        select(Sample.participant_id, Sample.state, func.count().label("num_samples"))
        .where(Sample.participant_id.in_(participant_ids))
        .group_by(Sample.participant_id, Sample.state)
    )


def select_alert_counts(participant_ids: Any) -> Select:
    return (
        select(Alert.participant_id, func.count().label("num_alerts"))
        .where(Alert.participant_id.in_(participant_ids))
        .group_by(Alert.participant_id)
    )


def select_timeline(meeting_id: str, started_at: float, bucket_s: float) -> Select:
    """Per-bucket counts and means over a meeting's samples, in time order."""
    in_meeting = select(Participant.id).where(Participant.meeting_id == meeting_id)
    samples = (
        select(
            bucket_index((Sample.t - started_at) / bucket_s).label("bucket"),
            Sample.participant_id,
            Sample.state,
            Sample.p_interested,
            Sample.p_bored,
            Sample.p_confused,
            Sample.looking_away,
            Sample.eyes_open,
        )
        .where(Sample.participant_id.in_(in_meeting), Sample.t >= started_at)
        .subquery()
    )
    columns: list[Any] = [
        samples.c.bucket,
        func.count().label("num_samples"),
        func.count(samples.c.participant_id.distinct()).label("num_people"),
    ]
    for state in _STATES:
        columns.append(
            func.sum(case((samples.c.state == state.value, 1), else_=0)).label(f"n_{state.value}")
        )
    for name in ("p_interested", "p_bored", "p_confused"):
        columns.append(func.avg(cast(samples.c[name], Float)).label(f"mean_{name}"))
    columns.append(looking_away_count(samples.c.looking_away).label("n_away"))
    columns.append(eyes_closed_count(samples.c.eyes_open).label("n_closed"))
    return select(*columns).group_by(samples.c.bucket).order_by(samples.c.bucket)


def select_alerts(meeting_id: str) -> Select:
    return (
        select(Alert, Participant.display_name)
        .outerjoin(Participant, Alert.participant_id == Participant.id)
        .where(Alert.meeting_id == meeting_id)
        .order_by(Alert.t, Alert.id)
    )


# -- helpers that run them ------------------------------------------------------------------


def list_meetings(session: Session, **filters: Any) -> list[MeetingInfo]:
    return [_meeting_info(m, n) for m, n in session.execute(select_meetings(**filters))]


def get_meeting(session: Session, meeting_id: str) -> MeetingInfo:
    query = select_meetings().where(Meeting.id == meeting_id)
    found = session.execute(query).first() if isinstance(meeting_id, str) else None
    if found is None:
        raise UnknownMeetingError(f"Expected the id of a stored meeting. Received: {meeting_id!r}")
    return _meeting_info(found[0], found[1])


def meeting_summary(session: Session, meeting_id: str) -> MeetingSummary:
    meeting = get_meeting(session, meeting_id)
    participants = session.scalars(
        select(Participant)
        .where(Participant.meeting_id == meeting_id)
        .order_by(Participant.display_name)
    ).all()
    ids = select(Participant.id).where(Participant.meeting_id == meeting_id)
    students = _student_summaries(session, participants, ids, {meeting_id: meeting})
    num_alerts, num_class_alerts = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Alert.participant_id.is_(None), 1), else_=0)), 0),
        ).where(Alert.meeting_id == meeting_id)
    ).one()
    return MeetingSummary(
        meeting=meeting,
        students=tuple(students),
        num_alerts=int(num_alerts),
        num_class_alerts=int(num_class_alerts),
        seconds_no_face=sum(s.seconds_no_face for s in students),
    )


def class_timeline(
    session: Session, meeting_id: str, bucket_s: float = 10.0
) -> list[TimelineBucket]:
    """The class in ``bucket_s``-second buckets; buckets without samples are left out."""
    if not (isinstance(bucket_s, int | float) and bucket_s > 0):
        raise ValueError(f"Expected bucket_s > 0 seconds. Received: {bucket_s!r}")
    meeting = get_meeting(session, meeting_id)
    started_at = meeting.started_at.timestamp()
    buckets = []
    for row in session.execute(select_timeline(meeting_id, started_at, float(bucket_s))):
        total = int(row.num_samples)
        counts = {state: int(getattr(row, f"n_{state.value}") or 0) for state in _STATES}
        buckets.append(
            TimelineBucket(
                meeting_id=meeting_id,
                start_s=int(row.bucket) * float(bucket_s),
                bucket_s=float(bucket_s),
                num_samples=total,
                num_people=int(row.num_people),
                share_interested=counts[EngagementState.INTERESTED] / total,
                share_bored=counts[EngagementState.BORED] / total,
                share_confused=counts[EngagementState.CONFUSED] / total,
                share_no_face=counts[EngagementState.NO_FACE] / total,
                share_present=counts[EngagementState.PRESENT] / total,
                share_looking_away=int(row.n_away or 0) / total,
                share_eyes_closed=int(row.n_closed or 0) / total,
                mean_p_interested=_optional_float(row.mean_p_interested),
                mean_p_bored=_optional_float(row.mean_p_bored),
                mean_p_confused=_optional_float(row.mean_p_confused),
            )
        )
    return buckets


def student_history(
    session: Session,
    display_name: str,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
) -> list[StudentMeeting]:
    """Every meeting a display name took part in (optionally started in ``[since, until)``)."""
    participants_query = (
        select(Participant)
        .join(Meeting, Participant.meeting_id == Meeting.id)
        .where(Participant.display_name == display_name)
        .order_by(Meeting.started_at, Meeting.id)
    )
    if since is not None:
        participants_query = participants_query.where(Meeting.started_at >= to_unix(since))
    if until is not None:
        participants_query = participants_query.where(Meeting.started_at < to_unix(until))
    participants = session.scalars(participants_query).all()
    if not participants:
        if (
            session.execute(
                select(Participant.id).where(Participant.display_name == display_name).limit(1)
            ).first()
            is None
        ):
            raise UnknownStudentError(
                f"Expected the display name of a stored participant. Received: {display_name!r}"
            )
        return []
    meeting_ids = sorted({p.meeting_id for p in participants})
    meetings = {m.meeting_id: m for m in list_meetings_by_id(session, meeting_ids)}
    ids = [p.id for p in participants]
    students = _student_summaries(session, participants, ids, meetings)
    return [StudentMeeting(meeting=meetings[s.meeting_id], student=s) for s in students]


def list_meetings_by_id(session: Session, meeting_ids: Sequence[str]) -> list[MeetingInfo]:
    query = select_meetings().where(Meeting.id.in_(meeting_ids))
    return [_meeting_info(m, n) for m, n in session.execute(query)]


def meeting_alerts(session: Session, meeting_id: str) -> list[AlertInfo]:
    get_meeting(session, meeting_id)
    return [
        AlertInfo(
            alert_id=alert.id,
            meeting_id=alert.meeting_id,
            t=from_unix(alert.t),
            kind=alert.kind,
            text=alert.text,
            delivered=bool(alert.delivered),
            display_name=display_name,
        )
        for alert, display_name in session.execute(select_alerts(meeting_id))
    ]


# -- pieces ---------------------------------------------------------------------------------


def _student_summaries(
    session: Session,
    participants: Sequence[Participant],
    participant_ids: Any,
    meetings: dict[str, MeetingInfo],
) -> list[StudentSummary]:
    counts: dict[int, dict[str, int]] = {}
    for participant_id, state, num in session.execute(select_state_counts(participant_ids)):
        counts.setdefault(participant_id, {})[state] = int(num)
    attention: dict[int, tuple[int, int, int]] = {
        int(participant_id): (int(away or 0), int(closed or 0), int(read or 0))
        for participant_id, away, closed, read in session.execute(
            select_attention_counts(participant_ids)
        )
    }
    alerts: dict[int, int] = {
        int(participant_id): int(num)
        for participant_id, num in session.execute(select_alert_counts(participant_ids))
        if participant_id is not None
    }
    return [
        _student_summary(
            p,
            counts.get(p.id, {}),
            meetings[p.meeting_id].sample_period_s,
            alerts.get(p.id, 0),
            attention.get(p.id, (0, 0, 0)),
        )
        for p in participants
    ]


def _student_summary(
    p: Participant,
    by_state: dict[str, int],
    period_s: float,
    num_alerts: int,
    attention: tuple[int, int, int],
) -> StudentSummary:
    """``attention``: samples looking away, with the eyes closed, with a reading."""
    n = {state: by_state.get(state.value, 0) for state in _STATES}
    total = sum(n.values())

    def share(state: EngagementState) -> float:
        return n[state] / total if total else 0.0

    return StudentSummary(
        meeting_id=p.meeting_id,
        participant_id=p.id,
        display_name=p.display_name,
        platform_id=p.platform_id,
        opted_out=bool(p.opted_out),
        num_samples=total,
        seconds_interested=n[EngagementState.INTERESTED] * period_s,
        seconds_bored=n[EngagementState.BORED] * period_s,
        seconds_confused=n[EngagementState.CONFUSED] * period_s,
        seconds_no_face=n[EngagementState.NO_FACE] * period_s,
        seconds_present=n[EngagementState.PRESENT] * period_s,
        share_interested=share(EngagementState.INTERESTED),
        share_bored=share(EngagementState.BORED),
        share_confused=share(EngagementState.CONFUSED),
        share_no_face=share(EngagementState.NO_FACE),
        share_present=share(EngagementState.PRESENT),
        seconds_looking_away=attention[0] * period_s,
        seconds_eyes_closed=attention[1] * period_s,
        num_attention_samples=attention[2],
        num_alerts=num_alerts,
    )


def _meeting_info(meeting: Meeting, num_participants: int | None) -> MeetingInfo:
    return MeetingInfo(
        meeting_id=meeting.id,
        platform=meeting.platform,
        room=meeting.room,
        title=meeting.title,
        teacher=meeting.teacher,
        started_at=from_unix(meeting.started_at),
        ended_at=None if meeting.ended_at is None else from_unix(meeting.ended_at),
        sample_period_s=float(meeting.sample_period_s),
        num_participants=int(num_participants or 0),
    )


def to_unix(value: TimeLike) -> float:
    """Unix seconds; a naive datetime is local time, as ``datetime.timestamp()`` reads it."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Expected a datetime or Unix seconds. Received: {value!r}")
    return float(value)


def from_unix(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
