"""The looking-away / eyes-closed marks on the teacher's tiles: the relay
(``bot.room.teacher_feed``) turns the live feed's ``attention`` object into badge flags, sent when
they change, kept across a state change (which carries no reading), dropped with the face — to
teacher sockets only — and the teacher's page in Chromium marks the tile.

The room, its sockets, the relay and the pages are real; the bot session is played by publishing
its own event shapes on the real ``LiveFeed`` (as in ``test_teacher_view``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.room import BuiltinRoomConnector
from bot.room.teacher_feed import attention_flags
from tests.room.browser import Browser
from tests.room.test_browser import chromium, fake_camera, join
from tests.room.test_teacher_view import MEETING, RawSocket, Served, _raw_join, served

__all__ = ["chromium", "fake_camera", "served"]  # fixtures

pytestmark = pytest.mark.timeout(180)


def _reading(*, away: bool = False, closed: bool = False, away_s: float = 0.0) -> dict[str, Any]:
    """The live feed's attention object (``bot.session.analysis._attention_event``)."""
    return {
        "yaw": 48.0 if away else 2.0,
        "pitch": 0.0,
        "eyes_open": not closed,
        "looking_away": away,
        "looking_away_s": away_s,
        "eyes_closed_s": 4.0 if closed else 0.0,
        "perclos": 0.1,
    }


def _badges(socket: RawSocket, student: str) -> list[tuple[str, bool, bool]]:
    return [
        (m["state"], m["looking_away"], m["eyes_closed"])
        for m in socket.messages
        if m["type"] == "badge" and m["student"] == student
    ]


async def _until(check: Any, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.02)


def test_flags_from_samples_state_changes_and_no_face() -> None:
    sample = {"type": "sample", "attention": _reading(away=True, away_s=3.0)}
    flags = attention_flags(sample, "present", None)
    assert flags == {"looking_away": True, "eyes_closed": False}
    last = {"looking_away": True, "eyes_closed": False}
    assert attention_flags({"type": "state"}, "interested", last) == last
    assert attention_flags({"type": "sample", "attention": None}, "present", last) == {
        "looking_away": False,
        "eyes_closed": False,
    }
    assert attention_flags(sample, "no_face", last) == {"looking_away": False, "eyes_closed": False}
    # Inside a run's tolerated break the reading says "not away" but the run goes on.
    between = {"type": "sample", "attention": _reading(away=False, away_s=2.5)}
    assert attention_flags(between, "present", None)["looking_away"] is True
    # Junk from a broken feed is no reading, never an exception.
    junk = {"type": "sample", "attention": {"looking_away_s": "x", "eyes_open": 0}}
    assert attention_flags(junk, "present", None) == {"looking_away": False, "eyes_closed": False}


async def test_only_the_teacher_gets_the_marks_when_they_change(served: Served) -> None:
    room = served.registry.create("physics", teacher_name="Ms Tanaka")
    async with aiohttp.ClientSession() as session:
        aiko = await _raw_join(session, served, {"type": "join", "name": "Aiko"})
        teacher = await _raw_join(
            session, served, {"type": "join", "name": "T", "teacher": room.teacher_token}
        )
        await _until(lambda: served.feed.num_subscribers(MEETING) > 0)

        def sample(reading: dict[str, Any] | None, state: str = "present") -> None:
            served.publish(
                {"type": "sample", "student": "Aiko", "state": state, "attention": reading}
            )

        sample(_reading())
        sample(_reading(away=True))
        sample(_reading(away=True, away_s=1.0))  # no change: no message
        served.publish({"type": "state", "student": "Aiko", "state": "present"})
        sample(_reading(away=True, closed=True, away_s=2.0))
        sample(_reading())
        sample(None, "no_face")
        expected = [
            ("present", False, False),
            ("present", True, False),
            ("present", True, True),
            ("present", False, False),
            ("no_face", False, False),
        ]
        await _until(lambda: len(_badges(teacher, "Aiko")) == len(expected))
        await asyncio.sleep(0.3)  # time for an extra (wrong) message to arrive, were there one
        assert _badges(teacher, "Aiko") == expected
        assert not any(m["type"] == "badge" for m in aiko.messages)
        assert not any("looking_away" in raw or "eyes_closed" in raw for raw in aiko.raw)
        for raw in (aiko, teacher):
            await raw.socket.close()


async def test_the_teachers_tile_shows_the_looking_away_mark(
    served: Served, chromium: str, fake_camera: Path, tmp_path: Path
) -> None:
    room = served.registry.create("physics", teacher_name="Ms Tanaka")
    bot = BuiltinRoomConnector(served.registry, "physics")
    await bot.join()
    browser = await Browser.launch(chromium, tmp_path / "profile", fake_camera)
    try:
        student = await browser.open(served.base_url + room.student_path)
        await join(student, "Aiko", camera=True)
        teacher = await browser.open(served.base_url + room.teacher_path)
        await join(teacher, "Ms Tanaka", camera=True)
        await _until(lambda: served.feed.num_subscribers(MEETING) > 0)
        tile = (
            "[...document.querySelectorAll('#tiles figure:not([hidden])')]"
            ".find((f) => f.querySelector('figcaption').textContent === 'Aiko')"
        )
        served.publish(
            {"type": "sample", "student": "Aiko", "state": "present",
             "attention": _reading(away=True, away_s=12.0)}
        )  # fmt: skip
        await teacher.wait_for(f"{tile}?.dataset.attention === 'looking_away'", timeout=30)
        assert (
            await teacher.evaluate(f"{tile}.querySelector('.attention-mark').textContent")
            == "looking away"
        )
        assert (
            await teacher.evaluate(f"{tile}.querySelector('.state-badge').textContent") == "present"
        )
        (tmp_path / "teacher-attention.png").write_bytes(await teacher.screenshot())
        served.publish(
            {"type": "sample", "student": "Aiko", "state": "present", "attention": _reading()}
        )
        await teacher.wait_for(f"{tile}.dataset.attention === ''", timeout=10)
        assert await teacher.evaluate(f"{tile}.querySelectorAll('.attention-mark').length") == 0
        # The student's own page never shows a mark.
        assert await student.evaluate("document.querySelectorAll('.attention-mark').length") == 0
    finally:
        await browser.close()
        await bot.leave()
