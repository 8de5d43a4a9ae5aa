"""The writer's lookup cache is keyed by names that participants choose: it must not grow
without end (pruned when a participant leaves or a meeting closes, cleared past a cap)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from storage import (
    MeetingClosed,
    MeetingOpened,
    ParticipantJoined,
    ParticipantLeft,
    Storage,
    new_meeting_id,
)
from storage import apply as applying


def test_the_writer_cache_forgets_who_left_and_closed_meetings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage.open(f"sqlite:///{tmp_path / 'c.db'}")
    writer = storage.writer(max_delay_s=0.01)
    try:
        cache = writer._cache
        meeting, t = new_meeting_id(), time.time()
        writer.submit(MeetingOpened(meeting, "janus", "1", t))
        for index in range(5):
            writer.submit(ParticipantJoined(meeting, f"name {index}", t))
        writer.submit(ParticipantLeft(meeting, "name 0", t + 1))
        assert writer.flush(10)
        assert (meeting, "name 0") not in cache.participants
        assert (meeting, "name 1") in cache.participants
        writer.submit(MeetingClosed(meeting, t + 2))
        assert writer.flush(10)
        assert not [key for key in cache.participants if key[0] == meeting]
        # Past the cap, the next batch starts from an empty cache.
        monkeypatch.setattr(applying, "MAX_CACHED_PARTICIPANTS", 3)
        other = new_meeting_id()
        writer.submit(MeetingOpened(other, "janus", "2", t))
        for index in range(5):
            writer.submit(ParticipantJoined(other, f"flood {index}", t))
        assert writer.flush(10)
        writer.submit(ParticipantJoined(other, "one more", t))
        assert writer.flush(10)
        assert len(cache.participants) <= 3
        assert writer.stats().rejected == 0
    finally:
        writer.close()
        storage.close()


def test_forget_student_takes_every_face_of_their_camera_and_nothing_else(tmp_path: Path) -> None:
    storage = Storage.open(f"sqlite:///{tmp_path / 'f.db'}")
    writer = storage.writer(max_delay_s=0.01)
    try:
        meeting, t = new_meeting_id(), time.time()
        writer.submit(MeetingOpened(meeting, "janus", "1", t))
        names = ["Ana", "Ana (2)", "Ana #2", "Ana #2 (3)", "ana (2)", "Anastasia", "Ana (x)", "Ben"]
        for name in names:
            writer.submit(ParticipantJoined(meeting, name, t))
        assert writer.flush(10)
        preview = storage.forget_student("Ana", dry_run=True)
        assert preview.num_participants == 4
        assert len(storage.meeting_summary(meeting).students) == len(names)  # nothing deleted
        storage.forget_student("Ana")
        left = {s.display_name for s in storage.meeting_summary(meeting).students}
        assert left == {"ana (2)", "Anastasia", "Ana (x)", "Ben"}
    finally:
        writer.close()
        storage.close()
