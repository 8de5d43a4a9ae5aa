"""The one writer on SQLite and PostgreSQL: batching, a locked and a read-only database, the
bounded buffer, rejected rows, rejoin and opt-out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from engine.types import EngagementState
from storage import (
    AlertRaised,
    ConsentKind,
    ConsentRecorded,
    ParticipantLeft,
    Sample,
    StateChanged,
    Storage,
    Writer,
    WriterStats,
    new_meeting_id,
)
from storage.db import create_engine_for
from tests.storage.helpers import ReadOnlySwitch, count_rows, join, opened, sample, write_lock

T0 = 1_750_000_000.0


def _writer(url: str, **options: float) -> Writer:
    engine = create_engine_for(url, writes=True, busy_timeout_s=0.2)
    return Writer(engine, retry_delay_s=0.05, max_retry_delay_s=0.2, **options)  # type: ignore[arg-type]


def _consistent(stats: WriterStats) -> bool:
    return stats.submitted == (
        stats.pending + stats.written + stats.dropped + stats.rejected + stats.discarded
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_rows_are_committed_within_the_delay_without_a_flush(
    storage: Storage, database_url: str
) -> None:
    meeting = new_meeting_id()
    writer = _writer(database_url, max_delay_s=2.0)
    with writer:
        writer.submit(opened(meeting, T0))
        writer.submit_many(sample(meeting, "Ana", T0 + i) for i in range(10))
        submitted_at = time.monotonic()
        # Neither 500 rows nor 2 s old yet: nothing is committed.
        assert count_rows(storage, "samples") == 0
        assert _wait_for(lambda: count_rows(storage, "samples") == 10, timeout_s=6.0)
        waited = time.monotonic() - submitted_at
    assert 1.0 < waited < 5.0
    assert writer.stats().written == 11


def test_batches_carry_at_most_500_rows(storage: Storage, database_url: str) -> None:
    meeting = new_meeting_id()
    with _writer(database_url) as writer:
        writer.submit(opened(meeting, T0))
        writer.submit(join(meeting, "Ana", T0))
        writer.submit_many(sample(meeting, "Ana", T0 + i * 0.1) for i in range(1234))
        assert writer.flush(timeout_s=30)
        stats = writer.stats()
    assert stats.written == 1236
    assert stats.largest_batch <= 500
    assert stats.batches >= 3
    assert count_rows(storage, "samples") == 1234


def test_locked_database_rows_are_kept_retried_and_written(
    storage: Storage, database_url: str
) -> None:
    url = database_url
    meeting = new_meeting_id()
    with _writer(url) as writer:
        writer.submit(opened(meeting, T0))
        assert writer.flush(timeout_s=10)
        with write_lock(url):
            took: list[float] = []
            for i in range(2000):
                started = time.perf_counter()
                writer.submit(sample(meeting, "Ana", T0 + i))
                took.append(time.perf_counter() - started)
            assert not writer.flush(timeout_s=1.0)  # the database keeps refusing
            stats = writer.stats()
            assert stats.failing and stats.retries >= 1 and stats.pending == 2000
            assert count_rows(storage, "samples") == 0
        assert writer.flush(timeout_s=20)
        stats = writer.stats()
    # The live path never waited on the locked database (the odd outlier is the OS scheduler).
    took.sort()
    assert took[int(len(took) * 0.99)] < 0.005 and sum(took) < 1.0
    assert stats.written == 2001 and stats.dropped == 0 and not stats.failing
    assert count_rows(storage, "samples") == 2000
    assert _consistent(stats)


def test_read_only_database_rows_are_kept_retried_and_written(
    storage: Storage, database_url: str
) -> None:
    url = database_url
    meeting = new_meeting_id()
    engine = create_engine_for(url, writes=True, busy_timeout_s=0.2)
    switch = ReadOnlySwitch(url, engine)
    switch.on()
    try:
        writer = Writer(engine, retry_delay_s=0.05, max_retry_delay_s=0.2).start()
        writer.submit(opened(meeting, T0))
        writer.submit_many(sample(meeting, "Ana", T0 + i) for i in range(300))
        assert not writer.flush(timeout_s=1.0)
        stats = writer.stats()
        assert stats.failing and stats.retries >= 1 and stats.pending == 301
        assert count_rows(storage, "meetings") == 0
    finally:
        switch.off()
    assert writer.flush(timeout_s=20)
    stats = writer.close()
    assert stats.written == 301 and stats.dropped == 0
    assert count_rows(storage, "samples") == 300


def test_full_buffer_drops_samples_counts_and_says_so(
    storage: Storage, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="storage.writer")
    url = database_url
    meeting = new_meeting_id()
    engine = create_engine_for(url, writes=True, busy_timeout_s=0.2)
    switch = ReadOnlySwitch(url, engine)
    switch.on()
    try:
        writer = Writer(
            engine,
            max_batch_rows=50,
            max_pending_rows=100,
            retry_delay_s=0.05,
            max_retry_delay_s=0.2,
        ).start()
        writer.submit(opened(meeting, T0))
        writer.submit(join(meeting, "Ana", T0))
        accepted = [writer.submit(sample(meeting, "Ana", T0 + i)) for i in range(150)]
        # Meeting, participant, alert and consent rows are kept even when the buffer is full.
        assert writer.submit(AlertRaised(meeting, T0 + 151, "bored", "Ana?", True, "Ana"))
        assert accepted.count(True) == 98 and accepted.count(False) == 52
        stats = writer.stats()
        assert stats.dropped == 52 and stats.pending == 101 and _consistent(stats)
        assert _wait_for(lambda: "DROPPED 52 rows" in caplog.text, timeout_s=5.0), caplog.text
        assert "the database refused a batch" in caplog.text
    finally:
        switch.off()
    assert writer.flush(timeout_s=20)
    stats = writer.close()
    assert stats.written == 101 and stats.dropped == 52 and _consistent(stats)
    assert count_rows(storage, "samples") == 98
    assert count_rows(storage, "alerts") == 1


def test_close_while_refused_drops_loudly(
    storage: Storage, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="storage.writer")
    url = database_url
    meeting = new_meeting_id()
    with _writer(url) as writer:
        writer.submit(opened(meeting, T0))
        assert writer.flush(timeout_s=10)
        with write_lock(url):
            writer.submit_many(sample(meeting, "Ana", T0 + i) for i in range(40))
            started = time.monotonic()
            stats = writer.close(timeout_s=0.5)
            assert time.monotonic() - started < 10
    assert stats.dropped == 40 and stats.pending == 0 and _consistent(stats)
    assert "DROPPED 40 rows" in caplog.text
    assert count_rows(storage, "samples") == 0


def test_sqlite_opened_read_only_by_url(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ro.db"
    Storage.open(f"sqlite:///{path}").close()
    caplog.set_level(logging.WARNING, logger="storage.writer")
    writer = _writer(f"sqlite:///file:{path}?mode=ro&uri=true").start()
    writer.submit(opened(new_meeting_id(), T0))
    assert not writer.flush(timeout_s=1.0)
    assert writer.stats().failing
    stats = writer.close(timeout_s=0.3)
    assert stats.dropped == 1 and stats.written == 0
    assert "readonly" in caplog.text.replace("read-only", "readonly").lower()


def test_rows_for_an_unknown_meeting_are_rejected_without_blocking_others(
    storage: Storage, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="storage.writer")
    meeting = new_meeting_id()
    with _writer(database_url) as writer:
        writer.submit(opened(meeting, T0))
        writer.submit(sample(meeting, "Ana", T0))
        writer.submit(sample("never-opened", "Ana", T0 + 1))
        writer.submit(ParticipantLeft(meeting, "Nobody", T0 + 1))
        writer.submit(sample(meeting, "Ana", T0 + 2))
        assert writer.flush(timeout_s=10)
        stats = writer.stats()
    assert stats.rejected == 2 and stats.written == 3 and _consistent(stats)
    assert "never-opened" in caplog.text and "REJECTED" in caplog.text
    assert count_rows(storage, "samples") == 2


def test_rejoining_under_the_same_name_is_the_same_participant(
    storage: Storage, database_url: str
) -> None:
    meeting = new_meeting_id()
    with _writer(database_url) as writer:
        writer.submit(opened(meeting, T0))
        writer.submit(join(meeting, "Ana", T0, platform_id="feed-1"))
        writer.submit(sample(meeting, "Ana", T0 + 1))
        writer.submit(ParticipantLeft(meeting, "Ana", T0 + 2))
        assert writer.flush(timeout_s=10)
        writer.submit(join(meeting, "Ana", T0 + 5, platform_id="feed-2"))
        writer.submit(sample(meeting, "Ana", T0 + 6, EngagementState.BORED))
        # A sample before any join makes the participant on first sight.
        writer.submit(sample(meeting, "Bo", T0 + 6))
        assert writer.flush(timeout_s=10)
    summary = storage.meeting_summary(meeting)
    assert [s.display_name for s in summary.students] == ["Ana", "Bo"]
    ana = summary.students[0]
    assert ana.num_samples == 2 and ana.platform_id == "feed-2"
    assert count_rows(storage, "participants", "left_at IS NULL") == 2


def test_opt_out_deletes_this_meetings_rows_at_once_and_stops_recording(
    storage: Storage,
    database_url: str,
) -> None:
    first, second = new_meeting_id(), new_meeting_id()
    # A long delay: only the opt-out itself may make the writer commit early.
    with _writer(database_url, max_delay_s=60.0) as writer:
        for meeting in (first, second):
            writer.submit(opened(meeting, T0))
            writer.submit(join(meeting, "Ana", T0))
            writer.submit(join(meeting, "Bo", T0))
            writer.submit_many(
                sample(meeting, name, T0 + i) for i in range(5) for name in ["Ana", "Bo"]
            )
            writer.submit(StateChanged(meeting, "Ana", T0 + 3, EngagementState.BORED))
            writer.submit(AlertRaised(meeting, T0 + 4, "bored", "Ana is bored", True, "Ana"))
        assert writer.flush(timeout_s=10)
        assert count_rows(storage, "samples") == 20

        writer.submit(sample(first, "Ana", T0 + 5))  # queued just before the opt-out
        writer.submit(ConsentRecorded(first, T0 + 6, ConsentKind.OPT_OUT, "Ana"))
        assert _wait_for(lambda: count_rows(storage, "consent_events") == 1, timeout_s=5.0)

        ana_first = (
            "participant_id IN (SELECT id FROM participants "
            f"WHERE meeting_id = '{first}' AND display_name = 'Ana')"
        )
        assert count_rows(storage, "samples", ana_first) == 0
        assert count_rows(storage, "state_changes", ana_first) == 0
        assert count_rows(storage, "alerts", ana_first) == 0
        # Bo, and Ana in the other meeting, are untouched.
        assert count_rows(storage, "samples") == 15
        assert count_rows(storage, "alerts") == 1

        # Rejoining under the same name is the same participant: still opted out.
        writer.submit(join(first, "Ana", T0 + 7))
        writer.submit(sample(first, "Ana", T0 + 7))
        writer.submit(AlertRaised(first, T0 + 7, "bored", "Ana?", True, "Ana"))
        assert writer.flush(timeout_s=10)
        assert writer.stats().discarded == 2
        assert count_rows(storage, "samples", ana_first) == 0

        writer.submit(ConsentRecorded(first, T0 + 8, ConsentKind.OPT_IN, "Ana"))
        writer.submit(sample(first, "Ana", T0 + 9))
        assert writer.flush(timeout_s=10)
        assert count_rows(storage, "samples", ana_first) == 1
        assert _consistent(writer.stats())
    summary = storage.meeting_summary(first)
    assert [s.opted_out for s in summary.students] == [False, False]


def test_submit_after_close_is_an_error_and_close_writes_unstarted_rows(
    storage: Storage,
    database_url: str,
) -> None:
    writer = _writer(database_url)
    writer.submit(opened(new_meeting_id(), T0))
    stats = writer.close()
    assert stats.written == 1
    assert count_rows(storage, "meetings") == 1
    with pytest.raises(RuntimeError, match="after close"):
        writer.submit(opened(new_meeting_id(), T0))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Sample("m", "Ana", T0, "sleepy", True), "Expected state in"),  # type: ignore[arg-type]
        (lambda: Sample("m", "Ana", T0, EngagementState.BORED, True, 1.5), "in \\[0, 1\\]"),
        (lambda: Sample("m", "Ana", -1.0, EngagementState.BORED, True), "Unix time"),
        (lambda: Sample("m", "", T0, EngagementState.BORED, True), "non-empty"),
        (lambda: Sample("m", "x" * 300, T0, EngagementState.BORED, True), "at most 255"),
        (lambda: Sample("m", "Ana", float("nan"), EngagementState.BORED, True), "Unix time"),
        (lambda: ConsentRecorded("m", T0, "maybe"), "consent kind"),  # type: ignore[arg-type]
        (lambda: ConsentRecorded("m", T0, ConsentKind.OPT_OUT), "who opted out"),
    ],
)
def test_bad_rows_are_refused_on_creation(make: Callable[[], object], expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as raised:
        make()
    assert "Received:" in str(raised.value)


def test_writer_options_are_checked(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ValueError, match="max_pending_rows"):
        Writer(engine, max_batch_rows=500, max_pending_rows=10)
    with pytest.raises(ValueError, match="max_delay_s"):
        Writer(engine, max_delay_s=0)
    engine.dispose()


def test_sqlite_disk_full_rows_are_kept_and_written_when_space_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="storage.writer")
    url = f"sqlite:///{tmp_path}/full.db"
    with Storage.open(url) as storage:
        engine = create_engine_for(url, writes=True, busy_timeout_s=0.2)
        full = True

        @event.listens_for(engine, "connect")
        def _no_room_to_grow(dbapi_connection: Any, _record: Any) -> None:
            # SQLite's own "database or disk is full": the file may not grow past its size now.
            if full:
                pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
                dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

        writer = Writer(engine, retry_delay_s=0.05, max_retry_delay_s=0.2).start()
        meeting = new_meeting_id()
        writer.submit(opened(meeting, T0))
        writer.submit_many(sample(meeting, "Ana", T0 + i) for i in range(3000))
        assert not writer.flush(timeout_s=1.0)
        assert writer.stats().failing and writer.stats().pending > 0
        assert "full" in caplog.text
        full = False  # space freed: the next connection may grow the file
        assert writer.flush(timeout_s=20)
        stats = writer.close()
        assert stats.written == 3001 and stats.dropped == 0
        assert count_rows(storage, "samples") == 3000
