"""The queries on SQLite and PostgreSQL, on a small history whose answers are worked out by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from engine.types import EngagementState as S
from storage import (
    AlertRaised,
    MeetingClosed,
    Storage,
    UnknownMeetingError,
    UnknownStudentError,
)
from tests.storage.helpers import join, opened, sample

T0 = datetime(2025, 6, 16, 9, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0


@dataclass(frozen=True)
class History:
    math: str = "m-math"  # Ms Lovelace, math-101, ended
    cs: str = "m-cs"  # Mr Turing, cs-202, the next day, 2 s sample period
    open_: str = "m-open"  # Ms Lovelace, cs-202, two days later, never closed


def _ana_state(i: int) -> S:
    if i < 30:
        return S.INTERESTED
    if i < 45:
        return S.BORED
    if i < 50:
        return S.CONFUSED
    return S.NO_FACE


@pytest.fixture
def history(storage: Storage) -> History:
    h = History()
    with storage.writer() as writer:
        writer.submit(
            opened(
                h.math,
                T0,
                platform="janus",
                room="math-101",
                title="Algebra",
                teacher="Ms Lovelace",
            )
        )
        writer.submit(join(h.math, "Ana", T0, platform_id="feed-a"))
        writer.submit(join(h.math, "Bo", T0))
        for i in range(60):
            writer.submit(sample(h.math, "Ana", T0 + i, _ana_state(i)))
            if i < 40:
                writer.submit(sample(h.math, "Bo", T0 + i, S.BORED))
        writer.submit(AlertRaised(h.math, T0 + 20, "bored", "Bo looks bored", True, "Bo"))
        writer.submit(AlertRaised(h.math, T0 + 35, "bored", "Ana looks bored", True, "Ana"))
        writer.submit(AlertRaised(h.math, T0 + 40, "class", "Half the class is bored", False))
        writer.submit(MeetingClosed(h.math, T0 + 60))

        writer.submit(
            opened(
                h.cs,
                T0 + DAY,
                platform="builtin",
                room="cs-202",
                teacher="Mr Turing",
                sample_period_s=2.0,
            )
        )
        for i in range(10):
            writer.submit(sample(h.cs, "Ana", T0 + DAY + 2 * i, S.CONFUSED))
        writer.submit(MeetingClosed(h.cs, T0 + DAY + 20))

        writer.submit(opened(h.open_, T0 + 2 * DAY, room="cs-202", teacher="Ms Lovelace"))
        for i in range(5):
            writer.submit(sample(h.open_, "Cy", T0 + 2 * DAY + i))
        assert writer.flush(timeout_s=20)
        assert writer.stats().written == writer.stats().submitted
    return h


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def test_meetings_by_date_range_teacher_room_and_platform(
    storage: Storage, history: History
) -> None:
    assert [m.meeting_id for m in storage.meetings()] == [history.math, history.cs, history.open_]
    assert [
        m.meeting_id for m in storage.meetings(since=_at(T0 + DAY), until=_at(T0 + 2 * DAY))
    ] == [history.cs]
    assert [m.meeting_id for m in storage.meetings(since=T0 + 1)] == [history.cs, history.open_]
    assert [m.meeting_id for m in storage.meetings(teacher="Ms Lovelace")] == [
        history.math,
        history.open_,
    ]
    assert [m.meeting_id for m in storage.meetings(room="cs-202")] == [history.cs, history.open_]
    assert [m.meeting_id for m in storage.meetings(platform="janus")] == [history.math]
    assert storage.meetings(teacher="Nobody") == []

    math = storage.meeting(history.math)
    assert (math.title, math.room, math.platform) == ("Algebra", "math-101", "janus")
    assert math.started_at == _at(T0) and math.ended_at == _at(T0 + 60)
    assert math.num_participants == 2
    assert storage.meeting(history.open_).ended_at is None


def test_meeting_summary_shares_alerts_and_no_face_time(storage: Storage, history: History) -> None:
    summary = storage.meeting_summary(history.math)
    assert summary.meeting.meeting_id == history.math
    assert (summary.num_alerts, summary.num_class_alerts) == (3, 1)
    assert summary.seconds_no_face == 10.0
    ana, bo = summary.students
    assert (ana.display_name, ana.platform_id, ana.num_samples) == ("Ana", "feed-a", 60)
    assert (
        ana.seconds_interested,
        ana.seconds_bored,
        ana.seconds_confused,
        ana.seconds_no_face,
    ) == (
        30.0,
        15.0,
        5.0,
        10.0,
    )
    assert ana.share_interested == pytest.approx(0.5)
    assert ana.share_bored == pytest.approx(0.25)
    assert ana.share_confused == pytest.approx(5 / 60)
    assert ana.share_no_face == pytest.approx(10 / 60)
    assert ana.num_alerts == 1
    assert (bo.display_name, bo.num_samples, bo.seconds_bored, bo.share_bored) == (
        "Bo",
        40,
        40.0,
        1.0,
    )
    assert bo.num_alerts == 1


def test_time_in_a_state_follows_the_sample_period(storage: Storage, history: History) -> None:
    (ana,) = storage.meeting_summary(history.cs).students
    assert (ana.num_samples, ana.seconds_confused, ana.share_confused) == (10, 20.0, 1.0)


def test_class_timeline_in_buckets(storage: Storage, history: History) -> None:
    buckets = storage.class_timeline(history.math, bucket_s=10)
    assert [b.start_s for b in buckets] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    first = buckets[0]
    assert (first.num_samples, first.num_people) == (20, 2)
    assert (first.share_interested, first.share_bored) == (0.5, 0.5)
    assert first.mean_p_interested == pytest.approx((0.8 * 10 + 0.1 * 10) / 20)
    fifth = buckets[4]  # 40..49 s: Ana bored then confused, Bo gone
    assert (fifth.num_samples, fifth.num_people) == (10, 1)
    assert (fifth.share_bored, fifth.share_confused, fifth.share_interested) == (0.5, 0.5, 0.0)
    last = buckets[5]  # 50..59 s: Ana's face is gone
    assert last.share_no_face == 1.0
    assert last.mean_p_interested is None
    assert sum(b.num_samples for b in buckets) == 100

    wide = storage.class_timeline(history.math, bucket_s=30)
    assert [(b.start_s, b.num_samples) for b in wide] == [(0.0, 60), (30.0, 40)]


def test_student_history_across_meetings(storage: Storage, history: History) -> None:
    entries = storage.student_history("Ana")
    assert [e.meeting.meeting_id for e in entries] == [history.math, history.cs]
    assert [e.student.num_samples for e in entries] == [60, 10]
    assert entries[0].meeting.teacher == "Ms Lovelace"
    assert entries[1].student.seconds_confused == 20.0
    later = storage.student_history("Ana", since=_at(T0 + DAY / 2))
    assert [e.meeting.meeting_id for e in later] == [history.cs]
    assert storage.student_history("Ana", until=T0 - 1) == []


def test_alerts_of_a_meeting_in_time_order(storage: Storage, history: History) -> None:
    alerts = storage.alerts(history.math)
    assert [(a.display_name, a.kind, a.delivered) for a in alerts] == [
        ("Bo", "bored", True),
        ("Ana", "bored", True),
        (None, "class", False),
    ]
    assert alerts[0].t == _at(T0 + 20)
    assert storage.alerts(history.cs) == []


@pytest.mark.parametrize("call", ["meeting", "meeting_summary", "class_timeline", "alerts"])
def test_unknown_meeting_is_a_clear_error(storage: Storage, history: History, call: str) -> None:
    with pytest.raises(UnknownMeetingError, match="Received: 'no-such-meeting'"):
        getattr(storage, call)("no-such-meeting")


def test_unknown_student_and_bad_bucket_are_clear_errors(
    storage: Storage, history: History
) -> None:
    with pytest.raises(UnknownStudentError, match="Received: 'Zed'"):
        storage.student_history("Zed")
    with pytest.raises(ValueError, match="bucket_s > 0"):
        storage.class_timeline(history.math, bucket_s=0)
    with pytest.raises(ValueError, match="datetime or Unix seconds"):
        storage.meetings(since="yesterday")  # type: ignore[arg-type]


def test_naive_and_aware_datetimes_mean_the_same_instant(
    storage: Storage, history: History
) -> None:
    aware = _at(T0 + DAY) - timedelta(seconds=1)
    naive_local = datetime.fromtimestamp(aware.timestamp())
    assert storage.meetings(since=aware) == storage.meetings(since=naive_local)
