"""A writer process for the crash test: writes a known sequence until it is killed.

Run as ``python -m tests.storage.crash_child URL``. Sequence: one meeting, one participant, then
samples t = T0, T0+1, ... with an alert after every 50th sample. Prints ``written N`` when the
count of committed rows grows, and ``begin`` / ``commit`` around each transaction.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from sqlalchemy import event

from engine.types import EngagementState
from storage import AlertRaised, MeetingOpened, ParticipantJoined, Sample, Writer
from storage.db import create_engine_for

MEETING = "crash-meeting"
T0 = 1_750_000_000.0
ALERT_EVERY = 50

_say_lock = threading.Lock()


def _say(line: str) -> None:
    """Prints one whole line. The writer thread (begin/commit) and the main thread (written N)
    both report; ``print`` writes the text and its newline separately, so unguarded lines from the
    two threads can interleave into ``written 2000begin``."""
    with _say_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main(url: str) -> None:
    engine = create_engine_for(url, writes=True)

    @event.listens_for(engine, "before_cursor_execute")
    def _slow(*_args: Any) -> None:
        # Stretch each transaction so that the kill lands inside one.
        time.sleep(0.01)

    # Tell the parent where transactions start and end, so it can kill inside one.
    event.listen(engine, "begin", lambda _connection: _say("begin"))
    event.listen(engine, "commit", lambda _connection: _say("commit"))

    writer = Writer(engine, max_batch_rows=500, max_delay_s=0.05).start()
    writer.submit(MeetingOpened(MEETING, "builtin", "room", T0))
    writer.submit(ParticipantJoined(MEETING, "Ana", T0))
    i = 0
    last = -1
    while True:
        stats = writer.stats()
        if stats.written != last:
            last = stats.written
            _say(f"written {last}")
        if stats.pending > 3000:
            time.sleep(0.01)
            continue
        for _ in range(ALERT_EVERY):
            state = (EngagementState.INTERESTED, EngagementState.BORED)[i % 2]
            writer.submit(Sample(MEETING, "Ana", T0 + i, state, True, 0.5, 0.3, 0.2))
            i += 1
        writer.submit(AlertRaised(MEETING, T0 + i, "bored", f"after {i}", True, "Ana"))


if __name__ == "__main__":
    main(sys.argv[1])
