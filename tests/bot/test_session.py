"""The meeting session with a fake meeting and a fake model, real video, detector and SQLite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from bot.alerts import AlertSettings
from bot.meetings.protocol import Participant
from bot.session import NOTICE, MeetingSession, SessionSettings
from bot.session.analysis import Coverage
from engine.faces import FaceDetector
from storage import Storage
from storage import models as tables
from tests.bot.session_fakes import FakeConnector, FakeScoringHub

CODE = "k7mq-x2pa"
VERDICTS = {
    "Ana": (0.1, 0.1, 0.8),  # confused
    "Ben": (0.9, 0.05, 0.05),  # interested
    "Cleo": (0.1, 0.8, 0.1),  # bored
}


@dataclass
class Class:
    session: MeetingSession
    connector: FakeConnector
    scoring: FakeScoringHub
    storage: Storage
    task: asyncio.Task[None]


@pytest.fixture
def face(jaffe_dir: Path) -> np.ndarray:
    image = cv2.imread(
        str(next(iter(sorted(jaffe_dir.glob("KA.NE1*.tiff"))))), cv2.IMREAD_GRAYSCALE
    )
    assert image is not None
    return image


@pytest.fixture
async def classroom(tmp_path: Path) -> AsyncIterator[Class]:
    storage = Storage.open(f"sqlite:///{tmp_path / 'class.db'}")
    writer = storage.writer()
    connector = FakeConnector()
    scoring = FakeScoringHub(lambda label: VERDICTS.get(label.split(" (")[0], (0.9, 0.05, 0.05)))
    settings = SessionSettings(
        teacher="Ms Tanaka",
        teacher_code=CODE,
        room="test",
        sample_period_s=0.25,
        empty_grace_s=1.5,
        alerts=AlertSettings(sustained_s=2.0, cooldown_s=60.0, class_min_students=5),
    )
    with ThreadPoolExecutor(2) as executor:
        session = MeetingSession(connector, settings, writer, scoring, FaceDetector(), executor)
        task = asyncio.create_task(session.run())
        yield Class(session, connector, scoring, storage, task)
        await session.stop("test over")
        await asyncio.wait_for(task, 10)
    writer.close()
    storage.close()


def alerts_to(connector: FakeConnector, name: str) -> list[str]:
    return [text for text in connector.whispers_to(name) if " has looked " in text]


def not_notice(texts: list[str]) -> list[str]:
    return [text for text in texts if text != NOTICE]


def claim(connector: FakeConnector, teacher: Participant) -> None:
    connector.say(teacher, f"!claim {CODE}", whisper=True)


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_alerts_reach_the_teacher_only(classroom: Class, face: np.ndarray) -> None:
    c = classroom
    teacher = c.connector.arrive("Ms Tanaka", face)
    c.connector.arrive("Ana", face)
    c.connector.arrive("Ben", face)
    claim(c.connector, teacher)
    await wait_for(lambda: alerts_to(c.connector, "Ms Tanaka"))
    await asyncio.sleep(2.5)  # Ben's interest and Ana's cooldown: nothing more may come
    alerts = alerts_to(c.connector, teacher.display_name)
    assert len(alerts) == 1 and alerts[0].startswith("Ana has looked confused for ")
    assert c.connector.public() == [NOTICE]
    assert not not_notice(c.connector.whispers_to("Ana"))
    assert not not_notice(c.connector.whispers_to("Ben"))
    assert "Ms Tanaka" not in c.scoring.submitted  # the teacher's video is never analysed
    assert {"Ana", "Ben"} <= set(c.scoring.submitted)


async def test_samples_states_and_alerts_are_stored(classroom: Class, face: np.ndarray) -> None:
    c = classroom
    claim(c.connector, c.connector.arrive("Ms Tanaka", video=False))
    c.connector.arrive("Ana", face)
    c.connector.arrive("Nobody", None)  # a camera showing no face
    await wait_for(lambda: alerts_to(c.connector, "Ms Tanaka"))
    await c.session.stop()
    await asyncio.wait_for(c.task, 10)
    c.session.writer.flush(5)
    summary = c.storage.meeting_summary(c.session.meeting_id)
    assert summary.meeting.ended_at is not None and summary.meeting.teacher == "Ms Tanaka"
    students = {s.display_name: s for s in summary.students}
    assert set(students) == {"Ana", "Nobody"}
    assert students["Ana"].share_confused > 0.5 and students["Ana"].num_alerts == 1
    assert students["Nobody"].share_no_face == 1.0
    alerts = c.storage.alerts(c.session.meeting_id)
    assert [(a.kind, a.display_name, a.delivered) for a in alerts] == [("confused", "Ana", True)]


async def test_status_and_teacher_only_commands(classroom: Class, face: np.ndarray) -> None:
    c = classroom
    teacher = c.connector.arrive("Ms Tanaka", video=False)
    ana = c.connector.arrive("Ana", face)
    ben = c.connector.arrive("Ben", face)
    claim(c.connector, teacher)
    await wait_for(lambda: c.session._persons.get("Ben") and c.session._persons["Ben"].reported)
    c.connector.say(ben, "!status")
    c.connector.say(ana, "!leave")
    await asyncio.sleep(0.5)
    assert not_notice(c.connector.whispers_to("Ben")) == [] and not c.task.done()
    c.connector.say(teacher, "!status")
    await wait_for(lambda: status_to(c.connector))
    status = status_to(c.connector)[0]
    assert status.startswith("classpulse: 2 of 2 students visible — ")
    assert "Ben: interested" in status
    c.connector.say(teacher, "!pause")
    await asyncio.sleep(0.3)
    assert c.session.status_text().startswith("classpulse: 2 students — ")  # coverage unknown
    submitted = len(c.scoring.submitted)
    await asyncio.sleep(1.0)
    assert len(c.scoring.submitted) == submitted  # paused: nothing goes to the model
    c.connector.say(teacher, "!resume")
    await wait_for(lambda: len(c.scoring.submitted) > submitted)
    c.connector.say(teacher, "!leave")
    await asyncio.wait_for(c.task, 10)
    assert c.session.stop_reason == "the teacher said !leave" and c.connector.left


async def test_coverage_counts_faces_not_cameras_off_or_opted_out(
    classroom: Class, face: np.ndarray
) -> None:
    c = classroom
    events: list[dict[str, object]] = []

    async def listen() -> None:
        async for event in c.session.live.subscribe(c.session.meeting_id):
            events.append(event)

    listener = asyncio.create_task(listen())
    teacher = c.connector.arrive("Ms Tanaka", face)
    claim(c.connector, teacher)
    await wait_for(lambda: c.session.teacher == teacher)
    c.connector.arrive("Ana", face)
    c.connector.arrive("Ben", face)
    c.connector.arrive("Nobody", None)  # a camera showing no face: no_face
    c.connector.arrive("Cleo", video=False)  # camera off
    dan = c.connector.arrive("Dan", face)
    c.connector.say(dan, "!optout")  # opted out: not counted at all
    await wait_for(lambda: c.session.coverage() == Coverage(2, 4))
    assert str(c.session.coverage()) == "2 of 4 visible"  # the teacher is no student either
    c.connector.say(teacher, "!status", whisper=True)
    await wait_for(
        lambda: any("students visible" in t for t in c.connector.whispers_to(teacher.display_name))
    )
    status = next(t for t in c.connector.whispers_to("Ms Tanaka") if "students visible" in t)
    assert status.startswith("classpulse: 2 of 4 students visible — ") and "Dan" not in status
    await wait_for(
        lambda: any(e == {**e, "type": "coverage", "visible": 2, "total": 4} for e in events)
    )
    listener.cancel()


def test_coverage_reads_n_of_m_visible() -> None:
    assert str(Coverage(12, 15)) == "12 of 15 visible"


def status_to(connector: FakeConnector) -> list[str]:
    return [t for t in connector.whispers_to("Ms Tanaka") if t.startswith("classpulse: 2 ")]


async def test_opt_out_stops_analysis_and_deletes_rows(classroom: Class, face: np.ndarray) -> None:
    c = classroom
    claim(c.connector, c.connector.arrive("Ms Tanaka", video=False))
    ana = c.connector.arrive("Ana", face)
    c.connector.arrive("Ben", face)
    await asyncio.sleep(1.5)
    c.connector.say(ana, "!optout")
    await wait_for(lambda: "Ana" in c.scoring.forgotten)
    submitted = c.scoring.submitted.count("Ana")
    await asyncio.sleep(2.5)
    assert c.scoring.submitted.count("Ana") == submitted  # at once, not at the next batch
    assert not any(t.startswith("Ana has looked") for t in c.connector.whispers_to("Ms Tanaka"))
    assert "opted out" in not_notice(c.connector.whispers_to("Ana"))[0]
    c.session.writer.flush(5)
    summary = c.storage.meeting_summary(c.session.meeting_id)
    students = {s.display_name: s for s in summary.students}
    assert students.get("Ana") is None or (
        students["Ana"].num_samples == 0 and students["Ana"].opted_out
    )
    assert students["Ben"].num_samples > 0
    c.connector.say(ana, "!optin")
    await wait_for(lambda: c.scoring.submitted.count("Ana") > submitted)


async def test_rejoin_is_the_same_student_and_bot_leaves_when_alone(
    classroom: Class, face: np.ndarray
) -> None:
    c = classroom
    ana = c.connector.arrive("Ana", face)
    await asyncio.sleep(1.0)
    c.connector.depart(ana)
    await asyncio.sleep(0.3)
    ana = c.connector.arrive("Ana", face)
    await asyncio.sleep(1.0)
    c.connector.depart(ana)
    await asyncio.wait_for(c.task, 10)  # alone for empty_grace_s: the bot leaves by itself
    assert c.session.stop_reason == "everyone left"
    c.session.writer.flush(5)
    summary = c.storage.meeting_summary(c.session.meeting_id)
    assert [s.display_name for s in summary.students] == ["Ana"]
    assert summary.meeting.ended_at is not None


async def test_rejoining_keeps_the_alert_cooldown(classroom: Class, face: np.ndarray) -> None:
    c = classroom
    claim(c.connector, c.connector.arrive("Ms Tanaka", video=False))
    ana = c.connector.arrive("Ana", face)
    await wait_for(lambda: alerts_to(c.connector, "Ms Tanaka"))
    c.connector.depart(ana)  # a network blip: Ana leaves and comes back, still confused
    await asyncio.sleep(0.3)
    c.connector.arrive("Ana", face)
    await wait_for(lambda: c.session._persons.get("Ana") and c.session._persons["Ana"].reported)
    await asyncio.sleep(3.0)  # longer than sustained_s=2: only the 60 s cooldown keeps it quiet
    assert len(alerts_to(c.connector, "Ms Tanaka")) == 1


async def test_state_changes_are_stored_at_the_frame_time_that_made_them(
    classroom: Class, face: np.ndarray
) -> None:
    """Not at the 1 Hz (here 4 Hz) tick that noticed them: the stored change into ``confused``
    is the time of the frame whose scores moved the smoothed state, stored and published with
    the smoothed probability it changed with."""
    c = classroom
    events: list[dict[str, object]] = []
    c.session.publish = events.append  # type: ignore[method-assign,assignment]
    c.connector.arrive("Ana", face)
    await wait_for(lambda: any(e.get("state") == "confused" for e in events))
    c.session.writer.flush(5)
    with c.storage.session() as session:
        rows = session.execute(
            select(tables.StateChange.t, tables.StateChange.to_state, tables.StateChange.confidence)
            .join(tables.Participant, tables.StateChange.participant_id == tables.Participant.id)
            .where(tables.Participant.display_name == "Ana")
            .order_by(tables.StateChange.t)
        ).all()
    frame_times = {t for label, t in c.scoring.scored if label == "Ana"}
    ((confused_at, confidence),) = [(t, p) for t, state, p in rows if state == "confused"]
    assert confused_at in frame_times, (confused_at, sorted(frame_times)[:5])
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)
    (event,) = [e for e in events if e.get("type") == "state" and e["state"] == "confused"]
    assert event["t"] == confused_at and event["confidence"] == confidence
    assert confidence is not None and 0.5 < confidence <= 1.0
    assert all(p is None for _, state, p in rows if state == "no_face")


def _marks_fine(c: Class) -> list[tuple[str, float, str, bool]]:
    """The stored ``!fine`` marks: (student, t, text, delivered)."""
    c.session.writer.flush(5)
    with c.storage.session() as session:
        rows = session.execute(
            select(
                tables.Participant.display_name,
                tables.Alert.t,
                tables.Alert.text,
                tables.Alert.delivered,
            )
            .join(tables.Participant, tables.Alert.participant_id == tables.Participant.id)
            .where(tables.Alert.kind == "calibrated")
        ).all()
    return [(str(name), float(t), str(text), bool(sent)) for name, t, text, sent in rows]


async def test_only_the_teacher_can_say_a_student_is_fine(
    classroom: Class, face: np.ndarray
) -> None:
    """``!fine Ana``: Ana's calm face reads confused to the model; the teacher, who can see her,
    says so, and the bot stops reporting it. A classmate saying it changes nothing."""
    c = classroom
    teacher = c.connector.arrive("Ms Tanaka", face)
    c.connector.arrive("Ana", face)
    ben = c.connector.arrive("Ben", face)
    claim(c.connector, teacher)
    await wait_for(lambda: alerts_to(c.connector, "Ms Tanaka"))
    c.session._alerts.calibrated("Ana")  # no cooldown: an alert comes again 2 s on unless fixed
    c.connector.say(ben, "!fine Ana")  # an impostor, in public and in a whisper
    c.connector.say(ben, "!fine Ana", whisper=True)
    await wait_for(lambda: len(alerts_to(c.connector, "Ms Tanaka")) == 2)
    assert not not_notice(c.connector.whispers_to("Ben"))  # ignored silently

    assert _marks_fine(c) == []  # the classmate's attempts left no trace on Ana's timeline
    c.connector.say(teacher, "!fine Ana", whisper=True)
    await wait_for(lambda: any("noted" in t for t in c.connector.whispers_to("Ms Tanaka")))
    ((name, marked_at, text, delivered),) = _marks_fine(c)  # on Ana's timeline, once
    assert (name, delivered) == ("Ana", True) and "fine" in text
    assert abs(marked_at - time.time()) < 10
    count = len(alerts_to(c.connector, "Ms Tanaka"))
    await asyncio.sleep(4.0)  # twice the test's 2 s hold, with the cooldown cleared
    assert len(alerts_to(c.connector, "Ms Tanaka")) == count
    assert c.session._states.state("Ana", time.time()).value == "interested"

    c.connector.say(teacher, "!fine Zed", whisper=True)
    c.connector.say(teacher, "!fine", whisper=True)
    await wait_for(
        lambda: any("no student called 'Zed'" in t for t in c.connector.whispers_to("Ms Tanaka"))
    )
    await wait_for(lambda: any("!fine Ana." in t for t in c.connector.whispers_to("Ms Tanaka")))
