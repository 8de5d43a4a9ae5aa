"""One lane per student (the dashboard's heat strips): each student's states in time buckets."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from engine.types import EngagementState
from storage.attention import eyes_closed_count, looking_away_count
from storage.models import Participant, Sample
from storage.queries import bucket_index, get_meeting
from storage.results import LaneBucket, StudentLane

_STATES = tuple(EngagementState)


def select_lane_counts(
    meeting_id: str, started_at: float, bucket_s: float
) -> Select[int, int, str, int, int, int]:
    """(participant id, bucket, state, samples, looking away, eyes closed) over a meeting's
    samples, in lane order."""
    in_meeting = select(Participant.id).where(Participant.meeting_id == meeting_id)
    bucket = bucket_index((Sample.t - started_at) / bucket_s).label("bucket")
    return (
        select(
            Sample.participant_id,
            bucket,
            Sample.state,
            func.count().label("num_samples"),
            looking_away_count().label("n_away"),
            eyes_closed_count().label("n_closed"),
        )
        .where(Sample.participant_id.in_(in_meeting), Sample.t >= started_at)
        .group_by(Sample.participant_id, bucket, Sample.state)
        .order_by(Sample.participant_id, bucket)
    )


def student_lanes(session: Session, meeting_id: str, bucket_s: float = 10.0) -> list[StudentLane]:
    """Every participant of a meeting (by display name) with their own bucketed timeline."""
    if isinstance(bucket_s, bool) or not (isinstance(bucket_s, int | float) and bucket_s > 0):
        raise ValueError(f"Expected bucket_s > 0 seconds. Received: {bucket_s!r}")
    meeting = get_meeting(session, meeting_id)
    participants = session.scalars(
        select(Participant)
        .where(Participant.meeting_id == meeting_id)
        .order_by(Participant.display_name)
    ).all()
    counts: dict[int, dict[int, dict[str, int]]] = {}
    #: (participant, bucket) → [samples looking away, with the eyes closed]
    attention: dict[tuple[int, int], list[int]] = {}
    query = select_lane_counts(meeting_id, meeting.started_at.timestamp(), float(bucket_s))
    for participant_id, bucket, state, num, away, closed in session.execute(query):
        counts.setdefault(participant_id, {}).setdefault(int(bucket), {})[state] = int(num)
        found = attention.setdefault((participant_id, int(bucket)), [0, 0])
        found[0] += int(away or 0)
        found[1] += int(closed or 0)
    lanes = []
    for p in participants:
        buckets = []
        for index, by_state in sorted(counts.get(p.id, {}).items()):
            total = sum(by_state.values())
            dominant = _dominant_state(by_state)
            away, closed = attention.get((p.id, index), [0, 0])
            buckets.append(
                LaneBucket(
                    start_s=index * float(bucket_s),
                    num_samples=total,
                    state=dominant.value,
                    share_interested=by_state.get(EngagementState.INTERESTED.value, 0) / total,
                    share_bored=by_state.get(EngagementState.BORED.value, 0) / total,
                    share_confused=by_state.get(EngagementState.CONFUSED.value, 0) / total,
                    share_no_face=by_state.get(EngagementState.NO_FACE.value, 0) / total,
                    share_present=by_state.get(EngagementState.PRESENT.value, 0) / total,
                    share_looking_away=away / total,
                    share_eyes_closed=closed / total,
                )
            )
        lanes.append(
            StudentLane(
                meeting_id=meeting_id,
                participant_id=p.id,
                display_name=p.display_name,
                opted_out=bool(p.opted_out),
                bucket_s=float(bucket_s),
                buckets=tuple(buckets),
            )
        )
    return lanes


def _dominant_state(by_state: dict[str, int]) -> EngagementState:
    """The most frequent state; ties go to the first in ``EngagementState`` order."""
    return max(_STATES, key=lambda state: (by_state.get(state.value, 0), -_STATES.index(state)))
