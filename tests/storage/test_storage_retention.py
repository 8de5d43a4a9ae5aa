"""Retention by age and forgetting one student, on SQLite and PostgreSQL: every child row goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.types import EngagementState as S
from storage import (
    AlertRaised,
    ConsentKind,
    ConsentRecorded,
    MeetingClosed,
    StateChanged,
    Storage,
    UnknownStudentError,
    Writer,
)
from tests.storage.helpers import all_counts, count_rows, join, opened, sample

NOW = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
DAY = 86_400.0


def _meeting(
    writer: Writer, meeting_id: str, start: float, names: list[str], closed: bool = True
) -> None:
    writer.submit(opened(meeting_id, start))
    writer.submit(ConsentRecorded(meeting_id, start, ConsentKind.NOTICE))
    for name in names:
        writer.submit(join(meeting_id, name, start))
        writer.submit_many(sample(meeting_id, name, start + i, S.BORED) for i in range(10))
        writer.submit(StateChanged(meeting_id, name, start + 3, S.BORED, S.INTERESTED))
        writer.submit(AlertRaised(meeting_id, start + 5, "bored", f"{name} is bored", True, name))
    writer.submit(AlertRaised(meeting_id, start + 6, "class", "class is bored", False))
    if closed:
        writer.submit(MeetingClosed(meeting_id, start + 60))


@pytest.fixture
def filled(storage: Storage) -> Storage:
    now = NOW.timestamp()
    with storage.writer() as writer:
        _meeting(writer, "old", now - 400 * DAY, ["Ana", "Bo"])
        _meeting(writer, "old-unclosed", now - 200 * DAY, ["Ana"], closed=False)
        _meeting(writer, "recent", now - 10 * DAY, ["Ana", "Cy"])
        writer.submit(ConsentRecorded("recent", now - 10 * DAY + 7, ConsentKind.OPT_IN, "Ana"))
        assert writer.flush(timeout_s=20)
    return storage


def test_purge_deletes_old_meetings_and_everything_in_them(filled: Storage) -> None:
    result = filled.purge_older_than(timedelta(days=180), now=NOW)
    assert (result.num_meetings, result.num_participants, result.num_samples) == (2, 3, 30)
    assert result.cutoff == NOW - timedelta(days=180)
    assert [m.meeting_id for m in filled.meetings()] == ["recent"]
    assert all_counts(filled) == {
        "meetings": 1,
        "participants": 2,
        "samples": 20,
        "state_changes": 2,
        "alerts": 3,
        "consent_events": 2,
    }
    again = filled.purge_older_than(timedelta(days=180), now=NOW)
    assert again.num_meetings == 0


def test_purge_with_a_longer_age_keeps_more(filled: Storage) -> None:
    assert filled.purge_older_than(365 * DAY, now=NOW).num_meetings == 1
    assert [m.meeting_id for m in filled.meetings()] == ["old-unclosed", "recent"]


def test_purge_refuses_a_negative_or_odd_age(filled: Storage) -> None:
    with pytest.raises(ValueError, match="age >= 0"):
        filled.purge_older_than(timedelta(days=-1))
    with pytest.raises(ValueError, match="timedelta or seconds"):
        filled.purge_older_than("a year")  # type: ignore[arg-type]
    assert count_rows(filled, "meetings") == 3


def test_forget_student_deletes_every_row_about_them_everywhere(filled: Storage) -> None:
    before = all_counts(filled)
    result = filled.forget_student("Ana")
    assert (result.num_meetings, result.num_participants, result.num_samples) == (3, 3, 30)
    assert (result.num_state_changes, result.num_alerts, result.num_consent_events) == (3, 3, 1)
    after = all_counts(filled)
    assert after == {
        "meetings": 3,
        "participants": before["participants"] - 3,
        "samples": before["samples"] - 30,
        "state_changes": before["state_changes"] - 3,
        "alerts": before["alerts"] - 3,
        "consent_events": before["consent_events"] - 1,
    }
    assert count_rows(filled, "participants", "display_name = 'Ana'") == 0
    with pytest.raises(UnknownStudentError):
        filled.student_history("Ana")
    # Others are untouched.
    assert [e.student.num_samples for e in filled.student_history("Bo")] == [10]
    assert [s.display_name for s in filled.meeting_summary("recent").students] == ["Cy"]


def test_forget_unknown_student_is_a_clear_error(filled: Storage) -> None:
    with pytest.raises(UnknownStudentError, match="Received: 'Zed'"):
        filled.forget_student("Zed")
    with pytest.raises(ValueError, match="non-empty display name"):
        filled.forget_student("  ")


def test_a_running_writer_survives_deletes_under_its_feet(filled: Storage) -> None:
    now = NOW.timestamp()
    with filled.writer() as writer:
        writer.submit(sample("recent", "Cy", now))  # the writer now caches Cy's id
        assert writer.flush(timeout_s=10)
        filled.forget_student("Cy")
        filled.purge_older_than(timedelta(days=180), now=NOW)
        writer.submit(sample("recent", "Cy", now + 1))  # made again on first sight
        writer.submit(sample("old", "Bo", now + 1))  # its meeting is gone: rejected, loudly
        writer.submit(sample("recent", "Ana", now + 2))
        assert writer.flush(timeout_s=10)
        stats = writer.stats()
    assert (stats.rejected, stats.pending, stats.failing) == (1, 0, False)
    assert [s.num_samples for s in filled.meeting_summary("recent").students] == [11, 1]
