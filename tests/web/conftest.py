"""Web fixtures: a temp-file SQLite database filled through the real storage writer, the fake bot
manager, and the app served in-process on 127.0.0.1 by aiohttp's test server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.live import LiveFeed
from bot.settings import Settings
from bot.web.app import create_app
from engine.types import EngagementState
from storage import (
    AlertRaised,
    MeetingClosed,
    MeetingOpened,
    ParticipantJoined,
    Sample,
    Storage,
    Writer,
)
from tests.web.fakes import FakeBotManager

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# One letter per state keeps the seeded timelines readable: [I] * 60 + [C] * 60.
I, B, C, N = (  # noqa: E741
    EngagementState.INTERESTED,
    EngagementState.BORED,
    EngagementState.CONFUSED,
    EngagementState.NO_FACE,
)
#: A display name a student could pick to attack the dashboard.
HOSTILE_NAME = '<img src=x onerror="document.title=1">Chloé'


@dataclass(frozen=True)
class SeededMeeting:
    meeting_id: str
    title: str
    teacher: str
    room: str
    started_at: float
    length_s: int
    #: Display name → state of each 1-second sample.
    students: dict[str, list[EngagementState]]
    #: (seconds after start, kind, text, display name or None)
    alerts: list[tuple[float, str, str, str | None]]


@dataclass(frozen=True)
class Seeded:
    algebra: SeededMeeting
    geometry: SeededMeeting


def seed_meeting(writer: Writer, meeting: SeededMeeting) -> None:
    t0 = meeting.started_at
    writer.submit(
        MeetingOpened(
            meeting_id=meeting.meeting_id,
            platform="janus",
            room=meeting.room,
            t=t0,
            title=meeting.title,
            teacher=meeting.teacher,
            sample_period_s=1.0,
        )
    )
    for name, states in meeting.students.items():
        writer.submit(ParticipantJoined(meeting_id=meeting.meeting_id, display_name=name, t=t0))
        for second, state in enumerate(states):
            face = state is not N
            writer.submit(
                Sample(
                    meeting_id=meeting.meeting_id,
                    display_name=name,
                    t=t0 + second + 0.5,
                    state=state,
                    face_present=face,
                    p_interested=0.6 if face else None,
                    p_bored=0.2 if face else None,
                    p_confused=0.2 if face else None,
                )
            )
    for offset, kind, text, alerted in meeting.alerts:
        writer.submit(
            AlertRaised(
                meeting_id=meeting.meeting_id,
                t=t0 + offset,
                kind=kind,
                text=text,
                delivered=True,
                display_name=alerted,
            )
        )
    writer.submit(MeetingClosed(meeting_id=meeting.meeting_id, t=t0 + meeting.length_s))


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


SEED = Seeded(
    algebra=SeededMeeting(
        meeting_id="algebra-0302",
        title="Algebra",
        teacher="Ms Rivera",
        room="1234",
        started_at=_utc("2026-03-02T09:00:00"),
        length_s=120,
        students={
            "Ana": [I] * 60 + [C] * 60,
            "Ben": [B] * 30 + [N] * 10 + [B] * 80,
            HOSTILE_NAME: [I] * 120,
        },
        alerts=[
            (90.0, "confused", "Ana looks confused", "Ana"),
            (100.0, "class_confused", "Many look confused", None),
        ],
    ),
    geometry=SeededMeeting(
        meeting_id="geometry-0309",
        title="Geometry",
        teacher="Mr Okafor",
        room="5678",
        started_at=_utc("2026-03-09T09:00:00"),
        length_s=60,
        students={"Ana": [I] * 60, "Dan": [B] * 45 + [C] * 15},
        alerts=[],
    ),
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'classpulse.db'}",
        data_dir=tmp_path / "data",
        api_token=TOKEN,
        model_report_dir=tmp_path / "report",
    )


@pytest.fixture
def storage(settings: Settings) -> Iterator[Storage]:
    with Storage.open(settings.database_url) as opened:
        yield opened


@pytest.fixture
def writer(storage: Storage) -> Iterator[Writer]:
    writer = storage.writer(max_delay_s=0.05)
    yield writer
    writer.close()


@pytest.fixture
def seeded(writer: Writer) -> Seeded:
    seed_meeting(writer, SEED.algebra)
    seed_meeting(writer, SEED.geometry)
    assert writer.flush(timeout_s=30)
    assert writer.stats().rejected == 0
    return SEED


@pytest.fixture
def feed() -> LiveFeed:
    return LiveFeed()


@pytest.fixture
def bots(writer: Writer, feed: LiveFeed) -> FakeBotManager:
    return FakeBotManager(writer, feed)


@pytest.fixture
async def client(
    settings: Settings, storage: Storage, bots: FakeBotManager, feed: LiveFeed
) -> AsyncIterator[TestClient]:
    app = create_app(settings, storage=storage, bots=bots, feed=feed)
    async with TestClient(TestServer(app, host="127.0.0.1"), headers=AUTH) as test_client:
        yield test_client
