"""The meeting session in the attention mode: a fake meeting, real video, the real landmark face
stage and SQLite; no emotion model (the scoring fake fails the test if a crop reaches it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import text

from bot.alerts import AlertSettings
from bot.bot_options import OptionError, session_settings
from bot.room.faces import bundled_face_path
from bot.session import MeetingSession, SessionSettings
from bot.session.settings import ATTENTION_NOTICE, NOTICE
from engine.attention import AttentionSettings
from engine.faces import DetectorSettings, FaceDetector
from engine.types import Attention, Box, FaceCrop
from storage import Storage
from tests.bot.session_fakes import FakeConnector, FakeScoringHub

CODE = "k7mq-x2pa"
AWAY = Attention(yaw_deg=52.0, pitch_deg=4.0, eye_openness=0.3, eyes_open=True, looking_away=True)


@dataclass
class Class:
    session: MeetingSession
    connector: FakeConnector
    scoring: FakeScoringHub
    storage: Storage
    task: asyncio.Task[None]


def _never_scored(label: str) -> tuple[float, float, float]:
    raise AssertionError(f"a crop of {label} reached the emotion model in the attention mode")


@pytest.fixture(scope="module")
def landmark_detector() -> FaceDetector:
    return FaceDetector(DetectorSettings(stage="landmarks"))


@pytest.fixture
def portrait() -> np.ndarray:
    path = bundled_face_path()
    if path is None:
        pytest.skip("matplotlib's sample portrait is not installed")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    # The head and shoulders, square: the fake camera shows it 200 px wide in a 640×360 frame,
    # a webcam framing (the whole portrait there leaves a face too small for BlazeFace).
    return image[60:420, 76:436]


@pytest.fixture
async def attention_class(tmp_path: Path, landmark_detector: FaceDetector) -> AsyncIterator[Class]:
    storage = Storage.open(f"sqlite:///{tmp_path / 'class.db'}")
    writer = storage.writer(max_delay_s=0.05)
    connector = FakeConnector()
    scoring = FakeScoringHub(_never_scored)
    settings = SessionSettings(
        teacher="Ms Tanaka",
        teacher_code=CODE,
        room="test",
        sample_period_s=0.25,
        empty_grace_s=30,
        mode="attention",
        alerts=AlertSettings(
            sustained_s=0.5,  # would alert on any emotion state at once: none may come
            cooldown_s=60.0,
            attention=AttentionSettings(looking_away_s=1.0, eyes_closed_s=1.0),
        ),
    )
    with ThreadPoolExecutor(2) as executor:
        session = MeetingSession(connector, settings, writer, scoring, landmark_detector, executor)
        task = asyncio.create_task(session.run())
        yield Class(session, connector, scoring, storage, task)
        if not task.done():
            await session.stop("test over")
            await asyncio.wait_for(task, 10)
    writer.close()
    storage.close()


async def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_the_mode_is_checked_and_sets_what_is_analysed() -> None:
    attention = session_settings("T", {"mode": "attention"})
    assert (attention.mode, attention.face_stage, attention.notice) == (
        "attention",
        "hybrid",  # the mesh once a second: head pose and eyes without a read per frame
        ATTENTION_NOTICE,
    )
    assert attention.alerts.alert_emotions is False  # attention alerts only
    engagement = session_settings("T", {})
    assert (
        engagement.mode,
        engagement.face_stage,
        engagement.notice,
        engagement.alerts.alert_emotions,
    ) == ("engagement", "hybrid", NOTICE, True)
    for bad in ("emotion", "", 1, None):
        with pytest.raises(OptionError) as raised:
            session_settings("T", {"mode": bad})
        assert raised.value.field == "options.mode"
        assert str(raised.value).startswith("Expected mode 'engagement' or 'attention'. Received: ")
    assert "do not analyse emotions" in ATTENTION_NOTICE
    assert "head is turned" in ATTENTION_NOTICE and "eyes are open" in ATTENTION_NOTICE


async def test_a_real_face_gives_samples_with_attention_and_no_scores(
    attention_class: Class, portrait: np.ndarray
) -> None:
    c = attention_class
    c.connector.arrive("Ms Tanaka", video=False, is_host=True)
    c.connector.arrive("Ana", portrait)
    await wait_for(lambda: c.session.coverage().visible == 1)
    await asyncio.sleep(1.5)
    await c.session.stop()
    await asyncio.wait_for(c.task, 10)
    c.session.writer.flush(5)
    assert c.connector.public() == [ATTENTION_NOTICE]
    assert c.scoring.submitted == []  # nothing went to an emotion model
    with c.storage.session() as session:
        rows = session.execute(
            text(
                "SELECT state, face_present, p_interested, p_bored, p_confused, yaw, pitch, "
                "eyes_open, looking_away FROM samples ORDER BY t"
            )
        ).all()
        changes = session.execute(text("SELECT to_state FROM state_changes")).scalars().all()
    seen = [row for row in rows if row.face_present]
    assert seen, rows
    assert {row.state for row in rows} <= {"present", "no_face"}
    assert {row.state for row in seen} == {"present"}
    assert all(r.p_interested is None and r.p_bored is None and r.p_confused is None for r in rows)
    read = [row for row in seen if row.yaw is not None]
    assert read, "the landmark stage gave no attention reading"
    for row in read:  # a frontal portrait: facing the camera, eyes open
        assert abs(row.yaw) < 20 and abs(row.pitch) < 25, row
        assert row.eyes_open == 1 and row.looking_away == 0  # raw SQL: SQLite booleans
    assert set(changes) <= {"present", "no_face"}
    assert c.storage.alerts(c.session.meeting_id) == []


async def test_looking_away_is_alerted_to_the_teacher_and_shown_in_status(
    attention_class: Class,
) -> None:
    c = attention_class
    teacher = c.connector.arrive("Ms Tanaka", video=False)
    c.connector.say(teacher, f"!claim {CODE}", whisper=True)
    c.connector.arrive("Tom", None)  # a camera; the crops below stand in for the face stage
    await wait_for(lambda: c.session.teacher == teacher and "Tom" in c.session._persons)

    async def turned_away() -> None:  # 5 frames a second, head turned
        while True:
            now = time.time()
            crop = FaceCrop("p1", now, Box(10, 10, 100, 100), np.zeros((48, 48), np.uint8), AWAY)
            c.session._on_crop("Tom", "Tom", crop)
            await asyncio.sleep(0.2)

    feeder = asyncio.create_task(turned_away())
    try:
        await wait_for(
            lambda: any("looked away" in t for t in c.connector.whispers_to("Ms Tanaka"))
        )
        c.connector.say(teacher, "!status", whisper=True)
        await wait_for(lambda: any("visible" in t for t in c.connector.whispers_to("Ms Tanaka")))
    finally:
        feeder.cancel()
    whispers = c.connector.whispers_to("Ms Tanaka")
    assert [t for t in whispers if "looked away" in t] == ["Tom has looked away for 1 s"]
    status = next(t for t in whispers if "visible" in t)
    assert status.startswith("classpulse: 1 of 1 students visible, 1 looking away, 0 eyes closed")
    assert "Tom: present, looking away (" in status
    assert c.scoring.submitted == []
    assert not any("Tom has" in t for t in c.connector.public())  # the teacher only
    await c.session.stop()
    await asyncio.wait_for(c.task, 10)
    c.session.writer.flush(5)
    alerts = c.storage.alerts(c.session.meeting_id)
    assert [(a.kind, a.display_name, a.delivered) for a in alerts] == [("looked_away", "Tom", True)]
    tom = c.storage.meeting_summary(c.session.meeting_id).students[0]
    assert tom.seconds_looking_away > 0 and tom.seconds_present > 0
    assert tom.share_interested == tom.share_bored == tom.share_confused == 0.0
