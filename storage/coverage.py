"""Coverage over a stored class: how many of the students present had a usable face, per bucket.

"Present" comes from the participants' join and leave times (a student with the camera off has no
samples at all, so counting only sampled students would call a class of dark tiles fully covered);
"visible" is a student with at least one face sample in the bucket. Opted-out students are counted
in neither, as on the live ``!status`` line.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from storage.models import Participant, Sample
from storage.queries import bucket_index, get_meeting


@dataclass(frozen=True, slots=True)
class CoverageBucket:
    """The class during ``[start_s, start_s + bucket_s)`` seconds after the meeting started."""

    start_s: float
    bucket_s: float
    #: Students with a usable face at some time in the bucket.
    num_visible: int
    #: Students in the meeting during the bucket (joined, not yet left, not opted out).
    num_present: int

    @property
    def share_visible(self) -> float | None:
        """``num_visible / num_present``; ``None`` when nobody was present."""
        return self.num_visible / self.num_present if self.num_present else None


@dataclass(frozen=True, slots=True)
class ClassCoverage:
    """Coverage over the whole class: the means of the buckets where someone was present."""

    buckets: tuple[CoverageBucket, ...]
    #: Mean students visible and present per bucket ("2.4 of 3 visible"); 0 without buckets.
    mean_visible: float
    mean_present: float

    @property
    def share_visible(self) -> float | None:
        return self.mean_visible / self.mean_present if self.mean_present else None


def select_visible_counts(meeting_id: str, started_at: float, bucket_s: float) -> Select:
    """(bucket, students with a face sample) over a meeting's samples, in time order."""
    in_meeting = select(Participant.id).where(
        Participant.meeting_id == meeting_id, Participant.opted_out.is_(False)
    )
    bucket = bucket_index((Sample.t - started_at) / bucket_s).label("bucket")
    return (
        select(bucket, func.count(Sample.participant_id.distinct()).label("num_visible"))
        .where(
            Sample.participant_id.in_(in_meeting),
            Sample.t >= started_at,
            Sample.face_present.is_(True),
        )
        .group_by(bucket)
        .order_by(bucket)
    )


def class_coverage(session: Session, meeting_id: str, bucket_s: float = 10.0) -> ClassCoverage:
    """Coverage per ``bucket_s`` seconds from the start to the end (or the last sample)."""
    if isinstance(bucket_s, bool) or not (isinstance(bucket_s, int | float) and bucket_s > 0):
        raise ValueError(f"Expected bucket_s > 0 seconds. Received: {bucket_s!r}")
    meeting = get_meeting(session, meeting_id)
    start = meeting.started_at.timestamp()
    size = float(bucket_s)
    visible = {
        int(index): int(num)
        for index, num in session.execute(select_visible_counts(meeting_id, start, size))
    }
    spans = session.execute(
        select(Participant.joined_at, Participant.left_at).where(
            Participant.meeting_id == meeting_id, Participant.opted_out.is_(False)
        )
    ).all()
    last_sample = session.execute(
        select(func.max(Sample.t)).where(
            Sample.participant_id.in_(
                select(Participant.id).where(Participant.meeting_id == meeting_id)
            )
        )
    ).scalar_one()
    end = meeting.ended_at.timestamp() if meeting.ended_at else float(last_sample or start)
    num_buckets = max(int((end - start) // size) + (1 if (end - start) % size else 0), 0)
    buckets = []
    for index in range(max(num_buckets, max(visible, default=-1) + 1)):
        low, high = start + index * size, start + (index + 1) * size
        present = sum(
            1 for joined, left in spans if joined < high and (left is None or left >= low)
        )
        seen = visible.get(index, 0)
        buckets.append(CoverageBucket(index * size, size, seen, max(present, seen)))
    counted = [b for b in buckets if b.num_present]
    return ClassCoverage(
        buckets=tuple(buckets),
        mean_visible=sum(b.num_visible for b in counted) / len(counted) if counted else 0.0,
        mean_present=sum(b.num_present for b in counted) / len(counted) if counted else 0.0,
    )
