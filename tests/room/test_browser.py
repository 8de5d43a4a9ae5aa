"""The room page in headless Chromium: two browser students, a teacher page, the bot in-process.

The teacher page receives the bot's alert (a whisper to the teacher); the student pages receive
the bot's message to everyone but never the alert; screenshots of the pages and of the teacher's
video tiles are not blank.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.meetings import VideoTrackAdded
from bot.meetings.frames import ReceivedFrame
from bot.room import BuiltinRoomConnector
from bot.room.faces import FaceVideoTrack, load_face_photos, student_schedule
from tests.conftest import require
from tests.room.browser import Browser, Page, find_chromium, is_blank, write_y4m
from tests.room.conftest import RoomServer

pytestmark = pytest.mark.timeout(180)

ALERT = "classpulse: Aiko has looked confused for 30 s"
HELLO = "Hello, I am classpulse (message to everyone)"


@pytest.fixture
def chromium() -> str:
    path = find_chromium()
    require(path is not None, "Debian's chromium is not installed (/usr/bin/chromium)")
    assert path is not None
    return path


@pytest.fixture
def fake_camera(jaffe_dir: Path, tmp_path: Path) -> Path:
    """3 s of a JAFFE face (neutral, then happy) drifting in a 640×360 frame; Chromium loops it."""
    photos = load_face_photos(jaffe_dir)
    track = FaceVideoTrack(student_schedule(photos, 0, (("neutral", 1.5), ("happy", 1.5))))
    return write_y4m((track.render(i / 15) for i in range(45)), tmp_path / "camera.y4m")


async def join(page: Page, name: str, *, camera: bool) -> None:
    await page.wait_for("document.readyState === 'complete' && !!window.classpulse")
    await page.evaluate(
        f"document.getElementById('name').value = {json.dumps(name)};"
        f"document.getElementById('camera').checked = {json.dumps(camera)};"
        "document.getElementById('join').click(); true"
    )
    await page.wait_for("window.classpulse.state === 'connected'", timeout=30)


async def test_teacher_page_gets_the_alert_and_students_never_do(
    room_server: RoomServer, chromium: str, fake_camera: Path, tmp_path: Path
) -> None:
    room = room_server.registry.create("chromium", teacher_name="Ms Tanaka")
    bot = BuiltinRoomConnector(room_server.registry, "chromium")
    await bot.join()
    videos: dict[str, VideoTrackAdded] = {}

    async def read_events() -> None:
        async for event in bot.events():
            if isinstance(event, VideoTrackAdded):
                videos[event.participant.display_name] = event

    reader = asyncio.create_task(read_events())
    browser = await Browser.launch(chromium, tmp_path / "profile", fake_camera)
    try:
        students = [await browser.open(room_server.base_url + room.student_path) for _ in range(2)]
        await join(students[0], "Aiko", camera=True)
        await join(students[1], "Ben", camera=True)
        teacher = await browser.open(room_server.base_url + room.teacher_path)
        await join(teacher, "ignored: the room names its teacher", camera=False)
        assert await teacher.evaluate("window.classpulse.role") == "teacher"
        assert await teacher.evaluate("window.classpulse.name") == "Ms Tanaka"
        assert await students[0].evaluate("window.classpulse.role") == "student"

        # The bot sees both students by name and gets their frames, full size.
        async with asyncio.timeout(20):
            while set(videos) != {"Aiko", "Ben"}:
                await asyncio.sleep(0.1)
        for name in ("Aiko", "Ben"):
            frame = await videos[name].source.next(timeout=10)
            assert isinstance(frame, ReceivedFrame), frame
            assert (frame.width, frame.height) == (640, 360)
        [teacher_participant] = bot.teachers()
        assert teacher_participant.display_name == "Ms Tanaka"

        # Each student sees the other in a tile; the teacher sees both.
        await students[0].wait_for("Object.values(window.classpulse.tiles).includes('Ben')")
        await students[1].wait_for("Object.values(window.classpulse.tiles).includes('Aiko')")
        await teacher.wait_for(
            "['Aiko', 'Ben'].every((n) => Object.values(window.classpulse.tiles).includes(n))"
        )

        await bot.send_chat(HELLO)
        await bot.send_chat(ALERT, to=teacher_participant)
        # Without a bot session there is no live feed: the whisper is a reply in the bot's panel.
        replies = await teacher.wait_for("window.classpulse.botReplies.map((m) => m.text)")
        assert replies == [ALERT]
        assert ALERT in await teacher.evaluate("document.getElementById('bot-panel').innerText")
        for student in students:
            await student.wait_for(
                f"window.classpulse.chat.some((m) => m.text === {json.dumps(HELLO)})"
            )
        await asyncio.sleep(0.5)  # time for a misrouted whisper to arrive, were there one
        for student in students:
            texts = await student.evaluate("window.classpulse.chat.map((m) => m.text)")
            assert ALERT not in texts
            assert ALERT not in await student.evaluate("document.body.innerText")
            assert await student.evaluate("window.classpulse.alerts.length") == 0
            assert await student.evaluate("window.classpulse.botReplies.length") == 0
            assert await student.evaluate("document.getElementById('bot-panel').hidden") is True
            assert await student.evaluate("document.getElementById('alerts-panel').hidden") is True

        # Screenshots: every page, and the teacher's two tiles, show something.
        await teacher.wait_for(
            "[...document.querySelectorAll('#tiles figure:not([hidden]) video')]"
            ".filter((v) => v.videoWidth > 0 && v.currentTime > 0.5).length >= 2",
            timeout=20,
        )
        for page in (*students, teacher):
            shot = await page.screenshot()
            (tmp_path / f"page-{await page.evaluate('window.classpulse.name')}.png").write_bytes(
                shot
            )
            assert not is_blank(shot)
        boxes = await teacher.evaluate(
            "[...document.querySelectorAll('#tiles figure:not([hidden]) video')].map((v) => {"
            " const r = v.getBoundingClientRect();"
            " return {x: r.x, y: r.y, width: r.width, height: r.height}; })"
        )
        assert len(boxes) == 2
        for index, box in enumerate(boxes):
            tile = await teacher.screenshot(box)
            (tmp_path / f"teacher-tile-{index}.png").write_bytes(tile)  # kept by pytest for a look
            assert not is_blank(tile), f"teacher tile {index} is blank"

        # A camera turned on after joining reaches the bot without renegotiation.
        await teacher.evaluate("document.getElementById('camera-toggle').click(); true")
        async with asyncio.timeout(15):
            while "Ms Tanaka" not in videos:
                await asyncio.sleep(0.1)
        frame = await videos["Ms Tanaka"].source.next(timeout=10)
        assert isinstance(frame, ReceivedFrame), frame
        assert frame.width > 0
        await students[0].wait_for("Object.values(window.classpulse.tiles).includes('Ms Tanaka')")
    finally:
        await browser.close()
        await bot.leave()
        reader.cancel()


VISIBLE_TILES = (
    "[...document.querySelectorAll('#tiles figure:not([hidden])')]"
    ".filter((f) => f.querySelector('video').videoWidth > 0)"
    ".map((f) => f.querySelector('figcaption').textContent).sort()"
)


async def test_whoever_joins_last_sees_every_tile(
    room_server: RoomServer, chromium: str, fake_camera: Path, tmp_path: Path
) -> None:
    """Students settle in first; the teacher (camera on, as the page's default) joins last and
    sees both students' tiles without waiting for anyone else to join or leave."""
    room = room_server.registry.create("latecomer", teacher_name="Ms Tanaka")
    browser = await Browser.launch(chromium, tmp_path / "profile", fake_camera)
    try:
        students = [await browser.open(room_server.base_url + room.student_path) for _ in range(2)]
        await join(students[0], "Aiko", camera=True)
        await join(students[1], "Ben", camera=True)
        await students[0].wait_for(f"JSON.stringify({VISIBLE_TILES}) === '[\"Ben\"]'")
        await students[1].wait_for(f"JSON.stringify({VISIBLE_TILES}) === '[\"Aiko\"]'")
        await asyncio.sleep(1.0)  # the class has settled: no roster change is on its way

        teacher = await browser.open(room_server.base_url + room.teacher_path)
        await join(teacher, "Ms Tanaka", camera=True)
        await teacher.wait_for(
            f'JSON.stringify({VISIBLE_TILES}) === \'["Aiko","Ben"]\'', timeout=15
        )
        # And the students see the teacher who arrived after them.
        for student, other in zip(students, ("Ben", "Aiko"), strict=True):
            await student.wait_for(f"{VISIBLE_TILES}.includes('Ms Tanaka')", timeout=15)
            assert other in await student.evaluate(VISIBLE_TILES)
    finally:
        await browser.close()
