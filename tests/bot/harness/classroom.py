"""The bot e2e test's class (``tests/bot/test_bot_e2e.py``): its live-feed recorder, the
``Classroom`` the chapters share, how the class gathers, and small readers of what it saw."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import func, select

import engine
from bot.meetings.janus import JanusConnector
from bot.runtime import BotHandle, BotRuntime
from bot.session import NOTICE
from bot.session.teacher import CLAIMED
from engine.inference import InferenceSettings
from storage import Storage
from storage import models as tables
from tests.bot.harness.chromium import ChromiumStudent, PageServer
from tests.bot.harness.clips import FPS, EncodedClip, encode_vp8, render_frames, write_y4m
from tests.bot.harness.janus_server import JanusServer
from tests.bot.harness.netns import NetworkNamespace
from tests.bot.harness.participants import JanusParticipant
from tests.conftest import require


def jaffe_images(jaffe_dir: Path, images: tuple[str, ...]) -> list[np.ndarray]:
    """Gray JAFFE faces by image code (``"KA.FE1"`` is ``KA.FE1.45.tiff``)."""
    faces = []
    for image in images:
        paths = sorted(jaffe_dir.glob(f"{image}.*.tiff"))
        face = cv2.imread(str(paths[0]), cv2.IMREAD_GRAYSCALE) if paths else None
        if face is None:
            raise FileNotFoundError(
                f"Expected JAFFE image {image}.*.tiff in {jaffe_dir}. Received: none"
            )
        faces.append(face)
    return faces


class LiveRecorder:
    """Everything the session publishes on the live feed, with arrival times (monotonic)."""

    def __init__(self, runtime: BotRuntime, meeting_id: str) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._consume(runtime, meeting_id), name="live-recorder")

    async def _consume(self, runtime: BotRuntime, meeting_id: str) -> None:
        async for event in runtime.live.subscribe(meeting_id):
            self.events.append((time.monotonic(), event))
            self._changed.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], *, since: int = 0, timeout: float
    ) -> tuple[int, float]:
        """(index, arrival time) of the first event from ``since`` on that matches."""
        async with asyncio.timeout(timeout):
            while True:
                for index in range(since, len(self.events)):
                    if predicate(self.events[index][1]):
                        return index, self.events[index][0]
                since = len(self.events)
                self._changed.clear()
                await self._changed.wait()

    def of(self, kind: str, student: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        return [
            e
            for _, e in self.events[since:]
            if e["type"] == kind and (student is None or e.get("student") == student)
        ]

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@dataclass
class Classroom:
    server: JanusServer
    storage: Storage
    runtime: BotRuntime
    bot: BotHandle
    students: dict[str, JanusParticipant]
    teacher: JanusParticipant
    chromium: ChromiumStudent
    live: LiveRecorder
    invited_at: float
    impostors: dict[str, JanusParticipant]
    claimed_at: float | None = None

    @property
    def meeting_id(self) -> str:
        return self.bot.session.meeting_id

    async def arrive(self, display: str) -> JanusParticipant:
        """A chat-only participant who joins now (after the bot) and leaves with the class."""
        member = JanusParticipant(self.server.websocket_url, display, chat=True)
        await member.start()
        self.impostors[display] = member
        return member

    async def claim(self) -> float:
        """The real teacher whispers the code and waits for the bot's private confirmation."""
        lines = self.teacher.record.lines
        before = sum(1 for line in lines if line.whisper and line.text == CLAIMED)
        await self.teacher.say(f"!claim {self.bot.teacher_code}", to=self.bot_username())
        async with asyncio.timeout(10):
            while sum(1 for line in lines if line.whisper and line.text == CLAIMED) == before:
                await asyncio.sleep(0.05)
        return time.monotonic()

    def bot_username(self) -> str:
        connector = self.bot.session.connector
        assert isinstance(connector, JanusConnector) and connector.link is not None
        return connector.link.chat_username

    async def stored(self) -> Storage:
        """The storage once the writer has committed everything submitted so far."""
        writer = self.runtime.writer
        assert writer is not None
        assert await asyncio.to_thread(writer.flush, 10.0), "the writer did not flush in 10 s"
        return self.storage


@dataclass(frozen=True)
class ClassPlan:
    """Who is in the class: the teacher, the aiortc students with the JAFFE images their
    cameras loop (one second each), the Chromium student's, and the bot's options."""

    teacher: str
    students: dict[str, tuple[str, ...]]
    browser: str
    browser_images: tuple[str, ...]
    options: dict[str, Any]


def shipped_weights() -> Path:
    """``engine.model.default_weights_path`` without importing TensorFlow into the test."""
    path = Path(engine.__file__).parent / "weights" / "emotion_cnn_lstm.keras"
    require(path.is_file(), f"trained weights {path} are missing (train them: classpulse train)")
    return path


def cameras(jaffe_dir: Path, plan: ClassPlan, folder: Path) -> tuple[dict[str, EncodedClip], Path]:
    """VP8 clips of the aiortc students and the Chromium student's Y4M camera file."""
    clips = {}
    for name, images in plan.students.items():
        frames = render_frames(
            jaffe_images(jaffe_dir, images), len(images) * FPS, seconds_per_face=1.0
        )
        clips[name] = encode_vp8(frames, folder / f"{name}.ivf")
    faces = jaffe_images(jaffe_dir, plan.browser_images)
    frames = render_frames(faces, len(faces) * FPS, seconds_per_face=1.0, tint=(110, 80, 60))
    return clips, write_y4m(frames, folder / "camera.y4m")


@contextlib.asynccontextmanager
async def open_classroom(
    netns: NetworkNamespace,
    janus_server: JanusServer,
    jaffe_dir: Path,
    folder: Path,
    plan: ClassPlan,
) -> AsyncIterator[Classroom]:
    """The class of ``test_bot_e2e``: Chromium, the aiortc students and the teacher join, the
    inference process loads the shipped weights meanwhile, then the bot is invited."""
    class_clips, browser_y4m = cameras(jaffe_dir, plan, folder)
    weights = shipped_weights()
    storage = Storage.open(f"sqlite:///{folder / 'classpulse.db'}")
    runtime = BotRuntime(storage, inference=InferenceSettings(model_path=str(weights)))
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(storage.close)
        # TensorFlow loads in its own process while the class gathers.
        loading = asyncio.create_task(runtime.__aenter__())
        stack.push_async_callback(finish, loading, runtime)
        page = await PageServer(netns.address).start()
        stack.push_async_callback(page.stop)
        url = page.student_url(
            websocket_url=janus_server.websocket_url,
            room=1234,
            display=plan.browser,
            simulcast=True,
        )
        chromium = ChromiumStudent(netns, browser_y4m, url, folder / "chromium").start()
        stack.callback(chromium.stop)
        students = {}
        for name in plan.students:
            students[name] = JanusParticipant(
                janus_server.websocket_url, name, clip=class_clips[name], chat=True
            )
            stack.push_async_callback(students[name].stop)
            await students[name].start()
        teacher = JanusParticipant(janus_server.websocket_url, plan.teacher, chat=True)
        stack.push_async_callback(teacher.stop)
        await teacher.start()
        await loading
        invited_at = time.monotonic()
        bot = await runtime.start_bot(
            janus_server.meeting_url(), teacher=plan.teacher, options=plan.options
        )
        live = LiveRecorder(runtime, bot.session.meeting_id)
        stack.push_async_callback(live.aclose)
        room = Classroom(
            janus_server, storage, runtime, bot, students, teacher, chromium, live, invited_at, {}
        )
        yield room
        for member in room.impostors.values():
            await member.stop()


async def finish(loading: asyncio.Task[BotRuntime], runtime: BotRuntime) -> None:
    """Close the runtime (every bot, the inference process, the writer) however far it got."""
    if not loading.done():
        loading.cancel()
    try:
        with contextlib.suppress(asyncio.CancelledError, Exception):  # already raised in setup
            await loading
    finally:
        await runtime.aclose()


def whispers(member: JanusParticipant) -> list[str]:
    """Texts addressed to ``member`` alone, read off the raw TextRoom messages it received."""
    return [
        str(message.get("text"))
        for message in member.record.raw
        if message.get("whisper") is True or message.get("textroom") == "whisper"
    ]


def not_notice(texts: list[str]) -> list[str]:
    """Whispers other than the privacy notice (late joiners and rejoiners get it privately)."""
    return [text for text in texts if text != NOTICE]


def is_alert(text: str) -> bool:
    """The texts of ``bot.alerts``: "Kana has looked confused for 8 s", "3 of 4 students look…"."""
    return " has looked " in text or " students look " in text


def longest_run(samples: list[dict[str, Any]], state: str) -> int:
    """The most consecutive samples (one a second) in ``state``."""
    longest = current = 0
    for sample in samples:
        current = current + 1 if sample["state"] == state else 0
        longest = max(longest, current)
    return longest


def event_is(kind: str, student: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event["type"] == kind and event.get("student") == student


def with_face(student: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def matches(event: dict[str, Any]) -> bool:
        return (
            event["type"] == "sample"
            and event["p"] is not None
            and (student is None or event["student"] == student)
        )

    return matches


def count_rows(storage: Storage, table: Any, display_name: str, meeting_id: str) -> int:
    with storage.session() as session:
        return session.execute(
            select(func.count())
            .select_from(table)
            .join(tables.Participant, table.participant_id == tables.Participant.id)
            .where(
                tables.Participant.meeting_id == meeting_id,
                tables.Participant.display_name == display_name,
            )
        ).scalar_one()
