"""The teacher's view of the built-in room: live state badges on the tiles, coverage, alerts and
the bot's replies in separate panels — and none of it ever reaches a student's socket.

The room, its sockets, the relay (``bot.room.teacher_feed``) and the pages in Chromium are real;
the bot session is played by publishing its own event shapes on the real ``LiveFeed`` (the
session's states come from the model, which these tests do not need), and the bot's chat by a
real ``BuiltinRoomConnector`` in the room.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web

from bot.live import LiveFeed
from bot.room import BuiltinRoomConnector, RoomRegistry, RoomSettings, setup_room
from bot.web.bots import BotInfo, BotManager, BotState
from bot.web.keys import BOTS
from tests.room.browser import Browser
from tests.room.test_browser import chromium, fake_camera, join

__all__ = ["chromium", "fake_camera"]  # fixtures

pytestmark = pytest.mark.timeout(180)

MEETING = "meeting-of-the-room"
ALERT = "Aiko has looked confused for 30 s"
REPLY = "classpulse: 2 of 2 students visible — Aiko: confused, Ben: interested"
TEACHER_ONLY = {"badge", "coverage", "alert"}


class RoomBots:
    """The bot manager as the room sees it: one bot in ``builtin:ROOM``, its meeting's feed."""

    def __init__(self, feed: LiveFeed, room: str) -> None:
        self.feed = feed
        self.room = room

    def list(self) -> list[BotInfo]:
        return [BotInfo("bot1", f"builtin:{self.room}", "T", BotState.RUNNING, meeting_id=MEETING)]

    def subscribe(self, meeting_id: str) -> AsyncIterator[dict[str, Any]]:
        return self.feed.subscribe(meeting_id)


@dataclass
class Served:
    base_url: str
    registry: RoomRegistry
    feed: LiveFeed
    runner: web.AppRunner

    def publish(self, event: dict[str, Any]) -> None:
        self.feed.publish(MEETING, {"meeting_id": MEETING, "t": time.time(), **event})


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    feed = LiveFeed()
    app = web.Application()
    app[BOTS] = cast(BotManager, RoomBots(feed, "physics"))  # the two calls the room makes
    settings = replace(RoomSettings.for_host("127.0.0.1"), offer_timeout_s=60.0)
    registry = setup_room(app, settings)
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served = Served(f"http://127.0.0.1:{runner.addresses[0][1]}", registry, feed, runner)
    try:
        yield served
    finally:
        await runner.cleanup()


class RawSocket:
    """A participant that speaks the protocol by hand and keeps every message it is sent."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.messages: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.raw.append(message.data)
                self.messages.append(json.loads(message.data))

    def types(self) -> set[str]:
        return {message["type"] for message in self.messages}


async def _raw_join(
    session: aiohttp.ClientSession, served: Served, join_message: dict[str, Any]
) -> RawSocket:
    url = served.base_url.replace("http", "ws") + "/rooms/physics/ws"
    socket = await session.ws_connect(url, origin=served.base_url)
    await socket.send_str(json.dumps(join_message))
    raw = RawSocket(socket)
    async with asyncio.timeout(10):
        while "welcome" not in raw.types():
            await asyncio.sleep(0.02)
    return raw


def _class_events(served: Served) -> None:
    """What the session publishes in a tick or two: samples, a state change, coverage, an alert."""
    served.publish({"type": "sample", "student": "Aiko", "state": "confused", "p": [0.1, 0.1, 0.8]})
    served.publish({"type": "sample", "student": "Ben", "state": "interested", "p": None})
    served.publish({"type": "state", "student": "Ben", "state": "interested"})
    served.publish({"type": "coverage", "visible": 2, "total": 2})
    served.publish(
        {"type": "alert", "kind": "confused", "student": "Aiko", "text": ALERT, "delivered": True}
    )


async def test_a_students_socket_never_receives_teacher_data(served: Served) -> None:
    """Play the attacker: a student, one with a guessed teacher token (refused), and one named
    like the teacher listen while the class runs; only the real teacher's socket gets badges."""
    room = served.registry.create("physics", teacher_name="Ms Tanaka")
    async with aiohttp.ClientSession() as session:
        aiko = await _raw_join(session, served, {"type": "join", "name": "Aiko"})
        ben = await _raw_join(session, served, {"type": "join", "name": "Ben"})
        mimic = await _raw_join(session, served, {"type": "join", "name": "Ms Tanaka (teacher)"})
        url = served.base_url.replace("http", "ws") + "/rooms/physics/ws"
        async with session.ws_connect(url, origin=served.base_url) as guesser:
            await guesser.send_str(json.dumps({"type": "join", "name": "Eve", "teacher": "x" * 32}))
            refused = await asyncio.wait_for(guesser.receive(), 10)
            assert refused.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        teacher = await _raw_join(
            session, served, {"type": "join", "name": "T", "teacher": room.teacher_token}
        )
        async with asyncio.timeout(10):
            while served.feed.num_subscribers(MEETING) == 0:  # the relay found the bot
                await asyncio.sleep(0.02)
        _class_events(served)
        async with asyncio.timeout(10):
            while not teacher.types() >= TEACHER_ONLY:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # time for a misrouted message to arrive, were there one
        badges = {m["student"]: m for m in teacher.messages if m["type"] == "badge"}
        ids = {
            person["name"]: person["id"]
            for message in teacher.messages
            if message["type"] == "participants"
            for person in message["participants"]
        }
        assert badges["Aiko"]["state"] == "confused" and badges["Aiko"]["id"] == ids["Aiko"]
        assert badges["Ben"]["state"] == "interested" and badges["Ben"]["id"] == ids["Ben"]
        assert [m["state"] for m in teacher.messages if m["type"] == "badge"].count(
            "interested"
        ) == 1
        for student in (aiko, ben, mimic):
            assert not student.types() & TEACHER_ONLY, student.types()
            assert not any(ALERT in raw or "confused" in raw for raw in student.raw)
        # A teacher who joins later gets the badges and the coverage at once.
        late = await _raw_join(
            session, served, {"type": "join", "name": "T", "teacher": room.teacher_token}
        )
        async with asyncio.timeout(10):
            while not {"badge", "coverage"} <= late.types():
                await asyncio.sleep(0.02)
        for raw in (aiko, ben, mimic, teacher, late):
            await raw.socket.close()


async def test_teacher_joining_last_sees_every_tile_with_a_badge_and_separate_panels(
    served: Served, chromium: str, fake_camera: Path, tmp_path: Path
) -> None:
    room = served.registry.create("physics", teacher_name="Ms Tanaka")
    bot = BuiltinRoomConnector(served.registry, "physics")
    await bot.join()
    browser = await Browser.launch(chromium, tmp_path / "profile", fake_camera)
    try:
        students = [await browser.open(served.base_url + room.student_path) for _ in range(2)]
        # The consent step: the notice and how to opt out are on the page before any camera.
        page = students[0]
        await page.wait_for("document.readyState === 'complete' && !!window.classpulse")
        assert await page.evaluate("window.classpulse.log") == ["notice"]
        assert await page.evaluate("document.getElementById('camera').checked") is False
        notice = await page.evaluate("document.getElementById('notice').innerText")
        assert "!optout" in notice and "camera" in notice.lower()
        assert await page.evaluate("document.getElementById('notice').offsetHeight") > 0
        await join(students[0], "Aiko", camera=True)
        await join(students[1], "Ben", camera=True)
        assert await page.evaluate("window.classpulse.log") == ["notice", "camera"]

        teacher = await browser.open(served.base_url + room.teacher_path)
        await join(teacher, "Ms Tanaka", camera=True)
        async with asyncio.timeout(10):
            while served.feed.num_subscribers(MEETING) == 0:
                await asyncio.sleep(0.05)
        _class_events(served)
        badges = (
            "[...document.querySelectorAll('#tiles figure:not([hidden])')]"
            ".filter((f) => f.querySelector('video').videoWidth > 0)"
            ".map((f) => f.querySelector('figcaption').textContent + ':' +"
            " (f.querySelector('.state-badge:not([hidden])') || {}).textContent).sort()"
        )
        await teacher.wait_for(
            f'JSON.stringify({badges}) === \'["Aiko:confused","Ben:interested"]\'', timeout=30
        )
        await teacher.wait_for("window.classpulse.alerts.length === 1")
        [teacher_participant] = bot.teachers()
        await bot.send_chat(REPLY, to=teacher_participant)
        await teacher.wait_for("window.classpulse.botReplies.length === 1")
        alerts = await teacher.evaluate("document.getElementById('alerts').innerText")
        replies = await teacher.evaluate("document.getElementById('bot-replies').innerText")
        assert ALERT in alerts and REPLY not in alerts
        assert REPLY in replies and ALERT not in replies
        coverage = await teacher.evaluate("document.getElementById('coverage').innerText")
        assert "2 of 2" in coverage
        (tmp_path / "teacher.png").write_bytes(shot := await teacher.screenshot())
        if os.environ.get("CLASSPULSE_SCREENSHOTS"):
            (Path(os.environ["CLASSPULSE_SCREENSHOTS"]) / "room-teacher.png").write_bytes(shot)
        await asyncio.sleep(0.5)
        for student in students:
            received = set(await student.evaluate("window.classpulse.received"))
            assert not received & TEACHER_ONLY, received
            assert (
                await student.evaluate(
                    "document.querySelectorAll('.state-badge:not([hidden])').length"
                )
                == 0
            )
            assert ALERT not in await student.evaluate("document.body.innerText")
            for panel in ("alerts-panel", "bot-panel", "coverage"):
                assert await student.evaluate(f"document.getElementById('{panel}').hidden")
    finally:
        await browser.close()
        await bot.leave()
