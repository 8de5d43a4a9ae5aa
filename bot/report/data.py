"""What a post-class report shows, read from storage once: pure data, no HTML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from storage import (
    AlertInfo,
    ClassCoverage,
    MeetingInfo,
    MeetingSummary,
    Storage,
    StudentLane,
    TimelineBucket,
)

#: Bucket sizes a report may pick, in seconds: about 120 buckets across the class at most.
BUCKET_SIZES_S = (5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
MAX_BUCKETS = 120


@dataclass(frozen=True, slots=True)
class ReportData:
    """One meeting as the report draws it; times in seconds after ``meeting.started_at``."""

    meeting: MeetingInfo
    summary: MeetingSummary
    timeline: tuple[TimelineBucket, ...]
    lanes: tuple[StudentLane, ...]
    alerts: tuple[AlertInfo, ...]
    coverage: ClassCoverage
    bucket_s: float
    #: Seconds from the start to the end (or, for a meeting never closed, to its last sample).
    duration_s: float
    generated_at: datetime


def choose_bucket(duration_s: float) -> float:
    """The smallest bucket that keeps the class within ``MAX_BUCKETS`` buckets."""
    for size in BUCKET_SIZES_S:
        if duration_s / size <= MAX_BUCKETS:
            return size
    return BUCKET_SIZES_S[-1]


def load_report(storage: Storage, meeting_id: str, bucket_s: float | None = None) -> ReportData:
    """Everything the report needs (``UnknownMeetingError`` for an id that is not stored).
    Blocking: call it from a thread in async code."""
    meeting = storage.meeting(meeting_id)
    summary = storage.meeting_summary(meeting_id)
    if meeting.ended_at is not None:
        duration = meeting.ended_at.timestamp() - meeting.started_at.timestamp()
    else:  # never closed: to its last sample, in minutes (only to choose the bucket)
        rough = storage.class_timeline(meeting_id, 60.0)
        duration = max((b.start_s + b.bucket_s for b in rough), default=0.0)
    size = bucket_s if bucket_s is not None else choose_bucket(duration)
    timeline = storage.class_timeline(meeting_id, size)
    last = max((b.start_s + b.bucket_s for b in timeline), default=0.0)
    return ReportData(
        meeting=meeting,
        summary=summary,
        timeline=tuple(timeline),
        lanes=tuple(storage.student_lanes(meeting_id, size)),
        alerts=tuple(storage.alerts(meeting_id)),
        coverage=storage.class_coverage(meeting_id, size),
        bucket_s=size,
        duration_s=max(duration, last if meeting.ended_at is None else 0.0, size),
        generated_at=datetime.now(UTC),
    )
