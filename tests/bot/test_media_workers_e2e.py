"""Media workers with real parts: Janus, aiortc students, two worker processes, a real session.

Students publish JAFFE clips through Janus; the bot's connector hands their videos to two media
worker processes (each with its own Janus subscriber), which decode them and send back only
face crops. Checked: every student is analysed, the shards use both workers, no worker loaded
TensorFlow, the session sees the crops (a fake scoring hub stands in for the inference process,
which has its own tests), and a killed worker is restarted, its students analysed again, the gap
recorded — without anyone being reported as leaving.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import pytest_asyncio

from bot.media.pool import MediaWorkers
from bot.media.sharded import ShardedSubscriber, sharded_subscribers
from bot.meetings import parse_meeting_url
from bot.meetings.janus import JanusConnector
from bot.meetings.remote_video import RemoteVideo
from bot.session import MeetingSession, SessionSettings
from engine.faces import FaceDetector
from storage import AlertRaised
from tests.bot.harness.clips import EncodedClip
from tests.bot.harness.janus_server import JanusServer
from tests.bot.harness.participants import JanusParticipant
from tests.bot.session_fakes import FakeScoringHub

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.slow,
    pytest.mark.datasets,
    pytest.mark.timeout(240),
]

STUDENTS = {"Ana": "confused", "Ben": "interested", "Chloé": "bored", "Dev": "interested"}


class RecordingWriter:
    """The storage writer's ``submit``, keeping the rows."""

    def __init__(self) -> None:
        self.rows: list[object] = []

    def submit(self, row: object) -> None:
        self.rows.append(row)


@dataclass
class Class:
    workers: MediaWorkers
    session: MeetingSession
    writer: RecordingWriter
    scoring: FakeScoringHub
    task: asyncio.Task[None]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def classroom(
    janus_server: JanusServer, student_clips: dict[str, EncodedClip]
) -> AsyncIterator[Class]:
    students = [
        await JanusParticipant(janus_server.websocket_url, name, clip=student_clips[mood]).start()
        for name, mood in STUDENTS.items()
    ]
    workers = await MediaWorkers(2).start()
    connector = JanusConnector(
        parse_meeting_url(janus_server.meeting_url()), subscribers=sharded_subscribers(workers)
    )
    writer = RecordingWriter()
    scoring = FakeScoringHub(lambda label: (0.8, 0.1, 0.1))
    executor = ThreadPoolExecutor(1)
    session = MeetingSession(
        connector,
        SessionSettings(teacher="Teacher Tess", room="1234"),
        writer,  # type: ignore[arg-type]
        scoring,
        FaceDetector(),
        executor,
    )
    task = asyncio.create_task(session.run())
    try:
        yield Class(workers, session, writer, scoring, task)
    finally:
        await session.stop()
        await asyncio.wait_for(task, 30)
        await workers.aclose()
        executor.shutdown()
        for student in students:
            await student.stop()


def _videos(session: MeetingSession) -> dict[str, RemoteVideo]:
    return {
        s.label: s.source
        for s in session.students
        if isinstance(s.source, RemoteVideo) and s.analysis is not None
    }


def _crops(scoring: FakeScoringHub) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in scoring.submitted:
        counts[label] = counts.get(label, 0) + 1
    return counts


async def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


async def test_students_are_analysed_in_two_worker_processes(classroom: Class) -> None:
    session, scoring = classroom.session, classroom.scoring
    await _wait(lambda: set(_videos(session)) == set(STUDENTS), 30, "every student's video")
    before = _crops(scoring)
    await asyncio.sleep(4)
    after = _crops(scoring)
    for name in STUDENTS:  # 5 fps asked: at least 3 crops a second each, through the workers
        assert after.get(name, 0) - before.get(name, 0) >= 12, (name, before, after)
    link = session.connector.link  # type: ignore[attr-defined]
    assert isinstance(link.subscriber, ShardedSubscriber)
    assert sorted(set(link.subscriber.feeds().values())) == [0, 1]  # both workers carry a shard
    assert classroom.workers.tensorflow_loaded == [False, False]
    assert session.num_frames_analysed > 0


async def test_a_killed_worker_is_restarted_and_analysis_resumes(classroom: Class) -> None:
    session, scoring, workers = classroom.session, classroom.scoring, classroom.workers
    link = session.connector.link  # type: ignore[attr-defined]
    on_first = [feed for feed, worker in link.subscriber.feeds().items() if worker == 0]
    assert on_first
    videos = _videos(session)
    killed_names = [
        name
        for name, video in videos.items()
        if any(video is link.subscriber._videos.get(feed) for feed in on_first)
    ]
    old_pid = workers.kill(0)
    killed_at = time.time()
    await _wait(lambda: workers.num_restarts == 1 and workers.pids[0] != old_pid, 30, "restart")
    start = _crops(scoring)
    await _wait(
        lambda: all(_crops(scoring).get(n, 0) >= start.get(n, 0) + 5 for n in killed_names),
        30,
        f"crops of {killed_names} again",
    )
    for name in killed_names:  # the same video carried on: nobody was reported as leaving
        assert _videos(session)[name] is videos[name]
        assert videos[name].num_gaps == 1
    gaps = [row for row in classroom.writer.rows if isinstance(row, AlertRaised)]
    assert {row.kind for row in gaps} == {"analysis_gap"}
    assert len(gaps) == len(killed_names)
    assert all(killed_at - 1 <= row.t <= time.time() for row in gaps)
    assert session.stop_reason is None
