"""Web API benchmark: what one dashboard meeting page costs the server.

    nice -n 10 .venv/bin/python benchmarks/web_api.py [--students 30] [--minutes 60]

Seeds a temp SQLite file through the storage writer with one meeting (``--students`` students,
one sample a second for ``--minutes``), then times, in-process over 127.0.0.1, the four reads the
meeting page makes (summary, class timeline, one lane per student, alerts) at the default 10 s
bucket, and the same page's CSV export. Prints the median and worst of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp.test_utils import TestClient, TestServer

from bot.live import LiveFeed
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.bots import UnavailableBotManager
from engine.types import EngagementState
from storage import MeetingClosed, MeetingOpened, ParticipantJoined, Sample, Storage

TOKEN = "benchmark-token-0123456789"


def seed(storage: Storage, students: int, seconds: int) -> str:
    meeting_id = "benchmark"
    t0 = time.time() - seconds
    states = list(EngagementState)
    rng = random.Random(7)
    with storage.writer(max_batch_rows=5000, max_pending_rows=1_000_000) as writer:
        writer.submit(MeetingOpened(meeting_id, "janus", "1234", t0, title="Benchmark"))
        for index in range(students):
            name = f"Student {index:02d}"
            writer.submit(ParticipantJoined(meeting_id, name, t0))
            state = states[0]
            for second in range(seconds):
                if rng.random() < 0.02:
                    state = rng.choice(states)
                writer.submit(Sample(meeting_id, name, t0 + second, state, state is not states[3]))
        writer.submit(MeetingClosed(meeting_id, t0 + seconds))
    return meeting_id


async def measure(storage: Storage, settings: Settings, meeting_id: str, repeats: int) -> None:
    feed = LiveFeed()
    app = create_app(
        settings, storage=storage, bots=UnavailableBotManager(feed, "benchmark"), feed=feed
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(app, host="127.0.0.1"), headers=headers) as client:
        base = f"/api/meetings/{meeting_id}"
        reads = {
            "summary": [base],
            "class timeline": [f"{base}/timeline"],
            "student lanes": [f"{base}/students"],
            "alerts": [f"{base}/alerts"],
            "meeting page (all 4)": [
                base,
                f"{base}/timeline",
                f"{base}/students",
                f"{base}/alerts",
            ],
            "page at 30 s buckets": [
                base,
                f"{base}/timeline?bucket=30s",
                f"{base}/students?bucket=30s",
                f"{base}/alerts",
            ],
            "summary CSV": [f"{base}?format=csv"],
        }
        for label, paths in reads.items():
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                for path in paths:
                    response = await client.get(path)
                    assert response.status == 200, await response.text()
                    await response.read()
                times.append((time.perf_counter() - started) * 1000)
            print(
                f"{label:22s} median {statistics.median(times):7.1f} ms   "
                f"worst {max(times):7.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{folder}/benchmark.db", data_dir=Path(folder), api_token=TOKEN
        )
        with Storage.open(settings.database_url) as storage:
            started = time.perf_counter()
            meeting_id = seed(storage, args.students, args.minutes * 60)
            samples = args.students * args.minutes * 60
            print(f"seeded {samples:,} samples in {time.perf_counter() - started:.1f} s")
            asyncio.run(measure(storage, settings, meeting_id, args.repeats))


if __name__ == "__main__":
    main()
