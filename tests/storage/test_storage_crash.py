"""Crash safety: a writer process killed with SIGKILL mid-batch leaves a consistent database that
holds exactly a prefix of what was submitted, including everything it reported committed."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from storage import Storage
from storage.db import create_engine_for, upgrade_database
from tests.storage import crash_child
from tests.storage.helpers import count_rows, join, sample

ROOT = Path(__file__).resolve().parents[2]


def _run_and_kill(url: str, min_written: int) -> int:
    """Starts the child, waits until it committed ``min_written`` rows, kills it inside the next
    transaction and returns the number of rows it had reported committed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.crash_child", url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reported = 0
    deadline = time.monotonic() + 120
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("written"):
                reported = int(line.split()[1])
            elif line.startswith("begin") and reported >= min_written:
                break
            if time.monotonic() > deadline:
                break
        # The transaction runs at least 10 ms a statement: this lands inside it.
        time.sleep(0.03)
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read().split()
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    assert reported >= min_written, "the child never committed enough rows"
    # Killed mid-batch: no commit came after the last begin.
    assert "commit" not in rest, rest
    for word, value in itertools.pairwise(rest):
        if word == "written":
            reported = int(value)
    return reported


def test_killed_writer_leaves_a_consistent_prefix(database_url: str, backend: str) -> None:
    upgrade_database(database_url)
    reported = _run_and_kill(database_url, min_written=2000)

    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            if backend == "sqlite":
                assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
                assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
            orphans = connection.execute(
                text(
                    "SELECT count(*) FROM samples s LEFT JOIN participants p "
                    "ON p.id = s.participant_id WHERE p.id IS NULL"
                )
            ).scalar()
            assert orphans == 0
            times = connection.execute(text("SELECT t FROM samples ORDER BY t")).scalars().all()
            alerts = connection.execute(text("SELECT text FROM alerts ORDER BY t")).scalars().all()
    finally:
        engine.dispose()

    n = len(times)
    # Batches commit whole and in order: the stored rows are exactly a prefix of the sequence.
    assert times == [crash_child.T0 + k for k in range(n)]
    every = crash_child.ALERT_EVERY
    expected_alerts = [f"after {every * (j + 1)}" for j in range(n // every)]
    if n % every == 0 and alerts == expected_alerts[:-1]:
        expected_alerts = expected_alerts[:-1]  # killed between the 50th sample and its alert
    assert alerts == expected_alerts
    # Everything the child saw committed is there (meeting + participant + samples + alerts).
    assert 2 + n + len(alerts) >= reported

    # The database opens, upgrades and takes new writes after the crash.
    with Storage.open(database_url) as storage, storage.writer() as writer:
        writer.submit(join(crash_child.MEETING, "Bo", crash_child.T0))
        writer.submit(sample(crash_child.MEETING, "Bo", crash_child.T0 + 1))
        assert writer.flush(timeout_s=20)
        assert count_rows(storage, "samples") == n + 1
        summary = storage.meeting_summary(crash_child.MEETING)
        assert [s.num_samples for s in summary.students] == [n, 1]
