"""Trust in a session, played by an attacker: names grant nothing, the code does; consent follows
the participant; the notice reaches late joiners. Fake meeting and model, real video, detector,
SQLite (the fixtures of ``test_session``); Janus and Chromium play it in ``test_bot_e2e``."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from bot.meetings.protocol import ConnectionLost, ConnectionRestored, Participant
from bot.session import NOTICE, RECLAIM
from bot.session.commands import OPTED_IN, OPTED_OUT
from bot.session.teacher import CLAIMED, LIMITED, PUBLIC_HINT, WRONG_CODE
from bot.teacher import ClaimOutcome, ClaimSettings, TeacherBinding, code_key, name_key
from engine.types import Box, FaceCrop
from tests.bot import test_session
from tests.bot.test_session import CODE, Class, wait_for

# The fixtures of test_session: a session over a fake meeting, and a JAFFE face.
classroom = test_session.classroom
face = test_session.face

IMPOSTOR_NAMES = ("  ms   TANAKA\u200b ", "MS TANAKA", "Ms\u00a0Tanaka", "Ms Tanaka")


def private(c: Class, participant: Participant) -> list[str]:
    return [t for t in c.connector.whispers_to_participant(participant) if t != NOTICE]


async def test_a_name_grants_nothing_and_the_code_in_a_whisper_does(
    classroom: Class, face: np.ndarray
) -> None:
    c = classroom
    teacher = c.connector.arrive("Ms Tanaka", video=False)
    impostors = [c.connector.arrive(name, video=False) for name in IMPOSTOR_NAMES]
    c.connector.arrive("Ana", face)  # confused: an alert is due after 2 s
    for impostor in impostors:
        for text, whisper in [("!status", True), ("!pause", False), ("!leave", True)]:
            c.connector.say(impostor, text, whisper=whisper)
    await asyncio.sleep(3.5)  # Ana's alert is due by now: it waits for a claim
    assert c.session.state == "running" and not c.session.paused and not c.task.done()
    assert c.session.teacher is None
    for someone in [teacher, *impostors]:
        assert private(c, someone) == [], someone.display_name
    assert len(c.session.teacher_desk.binding.pending) == 1

    # The code typed in public: refused with a private hint, and it stops working.
    c.connector.say(teacher, f"!claim {CODE}")
    await wait_for(lambda: private(c, teacher) == [PUBLIC_HINT])
    assert c.session.teacher is None and code_key(c.session.teacher_code) != code_key(CODE)
    c.connector.say(teacher, f"!claim {CODE}", whisper=True)
    await wait_for(lambda: private(c, teacher)[-1:] == [WRONG_CODE])

    # The new code, whispered: bound, confirmed privately, the kept alert delivered.
    c.connector.say(teacher, f"!claim {c.session.teacher_code.upper()}", whisper=True)
    await wait_for(lambda: any(t.startswith("Ana has looked") for t in private(c, teacher)))
    said = private(c, teacher)
    assert said[2] == CLAIMED and said[3].startswith("Ana has looked confused for ")
    assert c.session.teacher == teacher
    for impostor in impostors:  # after the claim too
        c.connector.say(impostor, "!status", whisper=True)
    await asyncio.sleep(0.5)
    for impostor in impostors:
        assert private(c, impostor) == [], impostor.display_name
    c.connector.say(teacher, "!status", whisper=True)
    await wait_for(lambda: private(c, teacher)[-1].startswith("classpulse: "))
    c.session.writer.flush(5)
    alerts = c.storage.alerts(c.session.meeting_id)
    assert [(a.display_name, a.delivered) for a in alerts] == [("Ana", True)]


async def test_the_teachers_camera_waits_for_the_claim_and_is_never_analysed(
    classroom: Class, face: np.ndarray
) -> None:
    c = classroom
    teacher = c.connector.arrive("Ms Tanaka", face)
    lookalike = c.connector.arrive("MS TANAKA", face)  # connectors normalise spaces
    c.connector.arrive("Ben", face)
    await wait_for(lambda: "Ben" in c.scoring.submitted)
    await asyncio.sleep(0.5)
    assert set(c.scoring.submitted) == {"Ben"}  # maybe the teacher: held back
    c.connector.say(lookalike, f"!claim {CODE}-nope", whisper=True)
    c.connector.say(teacher, f"!claim {CODE}", whisper=True)
    await wait_for(lambda: "MS TANAKA" in c.scoring.submitted)  # a student after all
    await asyncio.sleep(0.5)
    assert "Ms Tanaka" not in c.scoring.submitted
    c.session.writer.flush(5)
    summary = c.storage.meeting_summary(c.session.meeting_id)
    assert {s.display_name for s in summary.students} == {"Ben", "MS TANAKA"}


async def test_students_consent_is_their_own(classroom: Class, face: np.ndarray) -> None:
    c = classroom
    ana = c.connector.arrive("Ana", face)
    fake = c.connector.arrive("Ana", video=False)  # same name, another participant
    await wait_for(lambda: "Ana" in c.scoring.submitted)
    c.connector.say(fake, "!optout")
    await wait_for(lambda: private(c, fake) == [OPTED_OUT])
    count = c.scoring.submitted.count("Ana")
    await wait_for(lambda: c.scoring.submitted.count("Ana") > count + 3)  # still analysed
    # A whispered opt-out, confirmed privately; nothing in public.
    c.connector.say(ana, "!optout", whisper=True)
    await wait_for(lambda: private(c, ana) == [OPTED_OUT])
    assert OPTED_OUT not in c.connector.public()
    await asyncio.sleep(0.3)
    count = c.scoring.submitted.count("Ana")
    # Neither the other "Ana" nor a newcomer under the name can switch her back on.
    c.connector.say(fake, "!optin")
    newcomer = c.connector.arrive("Ana", face)
    c.connector.say(newcomer, "!optin", whisper=True)
    await wait_for(lambda: private(c, newcomer) == [OPTED_IN])
    await asyncio.sleep(1.0)
    assert c.scoring.submitted.count("Ana") == count
    # Leaving under her name ends nothing of hers.
    c.connector.depart(fake)
    await asyncio.sleep(0.3)
    assert c.session.students.get(ana) is not None
    assert c.session.students.get(ana).opted_out  # type: ignore[union-attr]
    c.session.writer.flush(5)
    students = {s.display_name: s for s in c.storage.meeting_summary(c.session.meeting_id).students}
    assert students["Ana"].opted_out and students["Ana"].num_samples == 0
    # The other two chose for themselves: "Ana #2" opted out and back in, "Ana #3" in.
    assert not students["Ana #2"].opted_out and not students["Ana #3"].opted_out


async def test_optout_deletes_every_person_seen_on_the_camera(
    classroom: Class, face: np.ndarray
) -> None:
    c = classroom
    ana = c.connector.arrive("Ana", face)
    await wait_for(lambda: "Ana" in c.scoring.submitted)
    # A classmate on Ana's laptop: the analysis names the second face "Ana (2)".
    crop = FaceCrop("p2", time.time(), Box(0, 0, 48, 48), np.zeros((48, 48), np.uint8))
    c.session._on_crop("Ana", "Ana (2)", crop)
    await asyncio.sleep(1.0)
    c.session.writer.flush(5)
    names = {s.display_name for s in c.storage.meeting_summary(c.session.meeting_id).students}
    assert names == {"Ana", "Ana (2)"}
    c.connector.say(ana, "!optout", whisper=True)
    await wait_for(lambda: private(c, ana) == [OPTED_OUT])
    c.session.writer.flush(5)
    for student in c.storage.meeting_summary(c.session.meeting_id).students:
        assert student.opted_out and student.num_samples == 0, student


async def test_late_joiners_get_the_notice_privately(classroom: Class, face: np.ndarray) -> None:
    c = classroom
    await wait_for(lambda: c.connector.public() == [NOTICE])
    ben = c.connector.arrive("Ben", video=False)
    await wait_for(lambda: c.connector.whispers_to_participant(ben) == [NOTICE])
    assert c.connector.public() == [NOTICE]


async def test_built_in_room_teacher_link_and_reclaim_after_a_loss(
    classroom: Class, face: np.ndarray
) -> None:
    c = classroom
    host = c.connector.arrive("Anyone", video=False, is_host=True)  # the room vouches for them
    await wait_for(lambda: c.session.teacher == host)
    c.connector.say(host, "!status")
    await wait_for(lambda: any(t.startswith("classpulse: ") for t in private(c, host)))
    c.connector.push(ConnectionLost("test", time.time()))
    c.connector.depart(host)
    c.connector.push(ConnectionRestored(time.time(), 1.0))
    await wait_for(lambda: RECLAIM in c.connector.public())


def test_wrong_codes_are_rate_limited_per_participant_and_meeting() -> None:
    now = [0.0]
    binding: TeacherBinding[str] = TeacherBinding(
        "abcd-efgh", ClaimSettings(meeting_burst=4), clock=lambda: now[0]
    )
    guesser, other = Participant("1", "x"), Participant("2", "y")
    outcomes = [binding.claim(guesser, f"wrong{i}xx", whisper=True) for i in range(4)]
    assert outcomes == [ClaimOutcome.WRONG] * 3 + [ClaimOutcome.LIMITED]
    assert binding.claim(guesser, "ABCD EFGH", whisper=True) is ClaimOutcome.LIMITED
    assert binding.claim(other, "nope-nope", whisper=True) is ClaimOutcome.WRONG
    assert binding.claim(other, "abcd-efgh", whisper=True) is ClaimOutcome.LIMITED  # meeting-wide
    now[0] += 60.0
    assert binding.claim(guesser, "abcdefgh", whisper=True) is ClaimOutcome.CLAIMED
    assert binding.is_teacher(guesser) and not binding.is_teacher(Participant("3", "x"))
    assert LIMITED and WRONG_CODE  # the texts exist for the session to send


@pytest.mark.parametrize("name", IMPOSTOR_NAMES)
def test_lookalike_names_hold_back_analysis(name: str) -> None:
    assert name_key(name) == name_key("Ms Tanaka")


def test_pending_alerts_are_bounded() -> None:
    binding: TeacherBinding[int] = TeacherBinding("abcd-efgh", ClaimSettings(max_pending_alerts=2))
    assert [binding.keep(i) for i in range(4)] == [None, None, 0, 1]
    assert binding.take_pending() == [2, 3]
