"""What the queries answer: small frozen dataclasses, absolute times as aware UTC datetimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class UnknownMeetingError(LookupError):
    """No stored meeting has this id."""


class UnknownStudentError(LookupError):
    """No stored participant has this display name."""


@dataclass(frozen=True, slots=True)
class MeetingInfo:
    meeting_id: str
    platform: str
    room: str
    title: str | None
    teacher: str | None
    started_at: datetime
    #: ``None`` while the meeting runs (or when the bot stopped without closing it).
    ended_at: datetime | None
    #: Seconds between two samples of one person.
    sample_period_s: float
    num_participants: int


@dataclass(frozen=True, slots=True)
class StudentSummary:
    """One student in one meeting. Seconds are samples × the meeting's sample period; shares are
    fractions of that student's samples (0 when there are none, e.g. after an opt-out)."""

    meeting_id: str
    participant_id: int
    display_name: str
    platform_id: str | None
    opted_out: bool
    num_samples: int
    seconds_interested: float
    seconds_bored: float
    seconds_confused: float
    seconds_no_face: float
    #: In view, no emotion read (the attention mode).
    seconds_present: float
    share_interested: float
    share_bored: float
    share_confused: float
    share_no_face: float
    share_present: float
    #: Samples with the head turned away / the eyes closed × the sample period (0 without
    #: attention readings: the Haar face stage reads none).
    seconds_looking_away: float
    seconds_eyes_closed: float
    #: Samples with an attention reading (the denominator for the two above).
    num_attention_samples: int
    num_alerts: int


@dataclass(frozen=True, slots=True)
class MeetingSummary:
    meeting: MeetingInfo
    students: tuple[StudentSummary, ...]
    #: Every alert of the meeting, class-wide ones included.
    num_alerts: int
    num_class_alerts: int
    #: Summed over students: person-seconds with no face visible.
    seconds_no_face: float


@dataclass(frozen=True, slots=True)
class TimelineBucket:
    """The class during ``[start_s, start_s + bucket_s)`` seconds after the meeting started."""

    meeting_id: str
    start_s: float
    bucket_s: float
    num_samples: int
    num_people: int
    share_interested: float
    share_bored: float
    share_confused: float
    share_no_face: float
    share_present: float
    #: Shares of the bucket's samples with the head turned away / the eyes closed.
    share_looking_away: float
    share_eyes_closed: float
    #: Mean model probabilities over samples with a face; ``None`` when no face was seen.
    mean_p_interested: float | None
    mean_p_bored: float | None
    mean_p_confused: float | None


@dataclass(frozen=True, slots=True)
class StudentMeeting:
    """One meeting in a student's history."""

    meeting: MeetingInfo
    student: StudentSummary


@dataclass(frozen=True, slots=True)
class AlertInfo:
    alert_id: int
    meeting_id: str
    t: datetime
    kind: str
    text: str
    delivered: bool
    #: ``None`` for a class-wide alert.
    display_name: str | None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a retention run deleted."""

    cutoff: datetime
    num_meetings: int
    num_participants: int
    num_samples: int


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What forgetting one student deleted, across every meeting."""

    display_name: str
    num_meetings: int
    num_participants: int
    num_samples: int
    num_state_changes: int
    num_alerts: int
    num_consent_events: int


@dataclass(frozen=True, slots=True)
class LaneBucket:
    """One student during ``[start_s, start_s + bucket_s)`` seconds after the meeting started.
    ``state`` is the most frequent state of the bucket (ties go to the first in
    ``EngagementState`` order); the shares are fractions of the bucket's samples."""

    start_s: float
    num_samples: int
    state: str
    share_interested: float
    share_bored: float
    share_confused: float
    share_no_face: float
    share_present: float
    #: Samples with the head turned away / the eyes closed (NULL readings count as neither).
    share_looking_away: float
    share_eyes_closed: float


@dataclass(frozen=True, slots=True)
class StudentLane:
    """A student's timeline in one meeting; buckets without samples are left out."""

    meeting_id: str
    participant_id: int
    display_name: str
    opted_out: bool
    bucket_s: float
    buckets: tuple[LaneBucket, ...]
