"""Storage benchmark: insert rate through the writer, and query latency on two million samples.

    nice -n 10 .venv/bin/python benchmarks/storage.py                 # temp SQLite file
    nice -n 10 .venv/bin/python benchmarks/storage.py --url postgresql+psycopg://...

1. Writer: ``--writer-rows`` samples submitted as fast as possible (30 students of one meeting);
   prints the sustained rate (submit of the first row to the commit of the last) and how long one
   ``submit`` takes, which is what the live path pays.
2. Queries: builds ``--samples`` samples (default 2,000,000: 30 meetings × 25 students × ~45 min
   at one sample a second) with core executemany, not the writer, then times a meeting summary
   and one student's history across all 30 meetings (goal: ≤ 100 ms each), and a class timeline.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text

from engine.types import EngagementState
from storage import MeetingOpened, ParticipantJoined, Sample, Storage, new_meeting_id
from storage.db import create_engine_for, is_sqlite
from storage.models import Meeting, Participant
from storage.models import Sample as SampleModel

GOAL_MS = 100.0
NUM_MEETINGS = 30
NUM_STUDENTS = 25
HISTORY_STUDENT = "Student 07"
STATES = [s.value for s in EngagementState]
T0 = 1_750_000_000.0


def bench_writer(storage: Storage, num_rows: int) -> None:
    meeting = new_meeting_id()
    names = [f"Writer {i:02d}" for i in range(30)]
    rows = [
        Sample(
            meeting, names[i % 30], T0 + i // 30, EngagementState.INTERESTED, True, 0.7, 0.2, 0.1
        )
        for i in range(num_rows)
    ]
    writer = storage.writer(max_pending_rows=max(100_000, num_rows + 100))
    writer.submit(MeetingOpened(meeting, "bench", "bench-room", T0))
    for name in names:
        writer.submit(ParticipantJoined(meeting, name, T0))
    assert writer.flush(timeout_s=60)
    submit_s: list[float] = []
    started = time.perf_counter()
    for row in rows:
        t = time.perf_counter()
        writer.submit(row)
        submit_s.append(time.perf_counter() - t)
    submitted = time.perf_counter() - started
    assert writer.flush(timeout_s=600), "writer did not finish"
    elapsed = time.perf_counter() - started
    stats = writer.close()
    assert stats.dropped == 0 and stats.rejected == 0
    submit_s.sort()
    print(
        f"writer: {num_rows:,} samples committed in {elapsed:.2f} s "
        f"= {num_rows / elapsed:,.0f} rows/s ({stats.batches} batches, "
        f"largest {stats.largest_batch} rows)"
    )
    print(
        f"writer: submit() took median {statistics.median(submit_s) * 1e6:.1f} µs, "
        f"p99 {submit_s[int(len(submit_s) * 0.99)] * 1e6:.1f} µs, "
        f"max {submit_s[-1] * 1e3:.2f} ms; all submits together {submitted:.2f} s"
    )
    slow = [sum(1 for s in submit_s if s > limit) for limit in (0.001, 0.010)]
    # A slow submit waits for the GIL (the writer thread runs Python too), never for the disk.
    print(f"writer: submits over 1 ms: {slow[0]}, over 10 ms: {slow[1]} (of {num_rows:,})")


def build_history(storage: Storage, num_samples: int, seed: int = 7) -> list[str]:
    """Meetings, participants and ``num_samples`` samples through core executemany."""
    rng = random.Random(seed)
    per_student = max(1, num_samples // (NUM_MEETINGS * NUM_STUDENTS))
    remainder = num_samples - per_student * NUM_MEETINGS * NUM_STUDENTS
    meeting_ids = [f"bench-{m:02d}" for m in range(NUM_MEETINGS)]
    engine = create_engine_for(storage.url, writes=True)
    started = time.perf_counter()
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(Meeting),
                [
                    {
                        "id": mid,
                        "platform": "builtin",
                        "room": f"room-{m % 3}",
                        "title": f"Lesson {m}",
                        "teacher": f"Teacher {m % 4}",
                        "started_at": T0 + m * 86_400,
                        "ended_at": T0 + m * 86_400 + per_student + 1,
                        "sample_period_s": 1.0,
                    }
                    for m, mid in enumerate(meeting_ids)
                ],
            )
            connection.execute(
                insert(Participant),
                [
                    {
                        "meeting_id": mid,
                        "display_name": f"Student {s:02d}",
                        "platform_id": None,
                        "joined_at": T0 + m * 86_400,
                        "left_at": None,
                        "opted_out": False,
                    }
                    for m, mid in enumerate(meeting_ids)
                    for s in range(NUM_STUDENTS)
                ],
            )
            participants = connection.execute(
                text(
                    "SELECT id, meeting_id FROM participants "
                    "WHERE meeting_id LIKE 'bench-%' ORDER BY id"
                )
            ).all()
        starts = {mid: T0 + m * 86_400 for m, mid in enumerate(meeting_ids)}
        written = 0
        chunk: list[dict[str, Any]] = []
        for index, (participant_id, meeting_id) in enumerate(participants):
            count = per_student + (1 if index < remainder else 0)
            state = rng.choice(STATES)
            for k in range(count):
                if rng.random() < 0.05:  # states last a while, as after smoothing
                    state = rng.choice(STATES)
                face = state != "no_face"
                chunk.append(
                    {
                        "participant_id": participant_id,
                        "t": starts[meeting_id] + k,
                        "p_interested": 0.6 if face else None,
                        "p_bored": 0.3 if face else None,
                        "p_confused": 0.1 if face else None,
                        "face_present": face,
                        "state": state,
                    }
                )
                if len(chunk) >= 50_000:
                    written += _insert_samples(engine, chunk)
                    chunk = []
        written += _insert_samples(engine, chunk)
        with engine.connect() as connection:
            if is_sqlite(storage.url):
                connection.exec_driver_sql("ANALYZE")
            else:
                connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE"
                )
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - started
    print(
        f"build: {written:,} samples in {NUM_MEETINGS} meetings × {NUM_STUDENTS} students "
        f"in {elapsed:.1f} s ({written / elapsed:,.0f} rows/s, core executemany)"
    )
    return meeting_ids


def _insert_samples(engine: Any, chunk: list[dict[str, Any]]) -> int:
    if not chunk:
        return 0
    with engine.begin() as connection:
        connection.execute(insert(SampleModel), chunk)
    return len(chunk)


def time_call(name: str, call: Callable[[], Any], repeat: int) -> float:
    started = time.perf_counter()
    call()
    cold_ms = (time.perf_counter() - started) * 1000
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    runs.sort()
    median = statistics.median(runs)
    verdict = "ok" if median <= GOAL_MS else "OVER GOAL"
    print(
        f"{name}: first {cold_ms:.1f} ms, median {median:.1f} ms, "
        f"p95 {runs[int(len(runs) * 0.95) - 1]:.1f} ms over {repeat} runs "
        f"(goal ≤ {GOAL_MS:.0f} ms: {verdict})"
    )
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a temp SQLite file)")
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--writer-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="classpulse-bench-") as tmp:
        url = args.url or f"sqlite:///{tmp}/bench.db"
        with Storage.open(url) as storage:
            print(f"database: {storage!r}")
            bench_writer(storage, args.writer_rows)
            meeting_ids = build_history(storage, args.samples)
            with storage.session() as session:
                total = session.execute(text("SELECT count(*) FROM samples")).scalar_one()
            print(f"database holds {total:,} samples")
            meeting = meeting_ids[len(meeting_ids) // 2]
            summary = storage.meeting_summary(meeting)
            print(
                f"meeting summary: {len(summary.students)} students, "
                f"{sum(s.num_samples for s in summary.students):,} samples"
            )
            history = storage.student_history(HISTORY_STUDENT)
            print(
                f"student history: {len(history)} meetings, "
                f"{sum(e.student.num_samples for e in history):,} samples"
            )
            time_call("meeting summary", lambda: storage.meeting_summary(meeting), args.repeat)
            time_call(
                "student history", lambda: storage.student_history(HISTORY_STUDENT), args.repeat
            )
            time_call(
                "class timeline (10 s buckets)",
                lambda: storage.class_timeline(meeting, 10.0),
                args.repeat,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
