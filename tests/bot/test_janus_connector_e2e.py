"""The Janus connector in a real class: Janus, three aiortc students, a Chromium student, a teacher.

One classroom for the module (starting Chromium and five peers per test would cost more than the
tests); tests run in file order and each leaves the class as it found it. The Janus restart test
comes last.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from bot.meetings import (
    ChatReceived,
    ChatUnavailableError,
    ConnectionLost,
    ConnectionRestored,
    ParticipantJoined,
    ParticipantLeft,
    VideoTrackAdded,
    VideoTrackRemoved,
    parse_meeting_url,
)
from bot.meetings.janus import JanusConnector
from bot.meetings.janus_subscriber import VideoRoomSubscriber
from bot.meetings.protocol import MAX_DISPLAY_NAME_CHARS
from tests.bot.harness.chromium import ChromiumStudent, PageServer
from tests.bot.harness.clips import EncodedClip
from tests.bot.harness.janus_server import JanusServer
from tests.bot.harness.netns import NetworkNamespace
from tests.bot.harness.observer import BotObserver
from tests.bot.harness.participants import JanusParticipant

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.slow,
    pytest.mark.datasets,
    pytest.mark.timeout(240),
]

STUDENTS = {"Ana": "confused", "Ben": "interested", "Chloé Ümlaut": "bored"}
BROWSER = "Dana (browser)"
TEACHER = "Teacher Tess"
ALL_STUDENTS = [*STUDENTS, BROWSER]
#: Background colours of the clips (RGB): a decoded frame must show them, not garbage.
AIORTC_TINT, BROWSER_TINT = (60, 90, 120), (110, 80, 60)


@dataclass
class Classroom:
    server: JanusServer
    students: dict[str, JanusParticipant]
    teacher: JanusParticipant
    chromium: ChromiumStudent
    bot: JanusConnector
    observer: BotObserver
    clips: dict[str, EncodedClip]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def classroom(
    netns: NetworkNamespace,
    janus_server: JanusServer,
    student_clips: dict[str, EncodedClip],
    chromium_y4m: Path,
    chromium_required: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Classroom]:
    page = await PageServer(netns.address).start()
    url = page.student_url(
        websocket_url=janus_server.websocket_url, room=1234, display=BROWSER, simulcast=True
    )
    chromium = ChromiumStudent(
        netns, chromium_y4m, url, tmp_path_factory.mktemp("chromium")
    ).start()
    students = {}
    teacher = None
    bot = None
    observer = None
    try:
        for name, mood in STUDENTS.items():
            students[name] = await JanusParticipant(
                janus_server.websocket_url, name, clip=student_clips[mood]
            ).start()
        teacher = await JanusParticipant(janus_server.websocket_url, TEACHER, chat=True).start()
        bot = JanusConnector(parse_meeting_url(janus_server.meeting_url()))
        await bot.join()
        observer = BotObserver(bot).start()
        yield Classroom(janus_server, students, teacher, chromium, bot, observer, student_clips)
    finally:
        if bot is not None:
            await bot.leave()
        if observer is not None:
            await observer.stop()
        for participant in [*students.values(), teacher]:
            if participant is not None:
                await participant.stop()
        chromium.stop()
        await page.stop()


def _corner_rgb(frame: object) -> tuple[int, ...]:
    array = frame.image.to_ndarray(format="rgb24")  # type: ignore[attr-defined]
    return tuple(int(v) for v in array[4:12, 4:12].reshape(-1, 3).mean(axis=0))


def _named(name: str) -> Callable[[ParticipantJoined], bool]:
    return lambda event: event.participant.display_name == name


def _named_video(name: str) -> Callable[[VideoTrackAdded], bool]:
    return lambda event: event.participant.display_name == name


def _close(color: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 20) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(color, expected, strict=True))


async def test_bot_sees_every_student_by_name_and_receives_their_frames(
    classroom: Classroom,
) -> None:
    observer = classroom.observer
    frames = await observer.wait_for_frames(ALL_STUDENTS, num_frames=10, timeout=60)

    assert {p.display_name for p in classroom.bot.participants()} == {*ALL_STUDENTS, TEACHER}
    for name in STUDENTS:
        assert (frames[name].width, frames[name].height) == (640, 360), name
        assert _close(_corner_rgb(frames[name]), AIORTC_TINT), (name, _corner_rgb(frames[name]))
    # Chromium sends simulcast (640×360 and 320×180): the bot asked Janus for the lowest layer.
    assert (frames[BROWSER].width, frames[BROWSER].height) == (320, 180)
    assert _close(_corner_rgb(frames[BROWSER]), BROWSER_TINT), _corner_rgb(frames[BROWSER])
    # The teacher only chats: a participant without video. The bot is never a participant.
    assert TEACHER not in observer.sources
    assert classroom.bot.display_name not in {p.display_name for p in classroom.bot.participants()}
    added = observer.of_type(VideoTrackAdded)
    assert {e.codec for e in added} == {"vp8"}
    # All on one peer connection, renegotiated as needed.
    link = classroom.bot.link
    assert link is not None and isinstance(link.subscriber, VideoRoomSubscriber)
    assert len(link.subscriber.feeds()) == 4

    # Frames keep arriving, at about the 15 fps sent (≥ 8 fps measured over 2 s on a busy machine).
    before = {name: observer.sources[name].num_received for name in ALL_STUDENTS}
    await asyncio.sleep(2.0)
    for name in ALL_STUDENTS:
        assert observer.sources[name].num_received - before[name] >= 16, name


async def test_late_joiner_is_picked_up_and_leaving_is_reported(classroom: Classroom) -> None:
    observer, since = classroom.observer, len(classroom.observer.events)
    late = await JanusParticipant(
        classroom.server.websocket_url, "Late Lou", clip=classroom.clips["interested"]
    ).start()
    try:
        joined = await observer.wait_for(
            ParticipantJoined, lambda e: e.participant.display_name == "Late Lou", since=since
        )
        await observer.wait_for(
            VideoTrackAdded, lambda e: e.participant == joined.participant, since=since
        )
        await observer.wait_for_frames(["Late Lou"], num_frames=5, timeout=10)
        # Renegotiating the shared peer connection did not stall the others.
        await observer.wait_for_frames(ALL_STUDENTS, num_frames=5, timeout=10)
        # Video and chat of Late Lou are one participant.
        assert (
            sum(
                1
                for e in observer.of_type(ParticipantJoined, since)
                if e.participant.display_name == "Late Lou"
            )
            == 1
        )
    finally:
        await late.stop()
    source = observer.sources.get("Late Lou")
    removed = await observer.wait_for(
        VideoTrackRemoved, lambda e: e.participant == joined.participant, since=since
    )
    left = await observer.wait_for(
        ParticipantLeft, lambda e: e.participant == joined.participant, since=since
    )
    events = [e for _, e in observer.events]
    assert events.index(removed) < events.index(left)
    assert source is None or source.closed
    assert "Late Lou" not in {p.display_name for p in classroom.bot.participants()}

    # Janus recycles Lou's m-line (same mid, new SSRC) for the next student: frames must flow.
    since = len(observer.events)
    max_ = await JanusParticipant(
        classroom.server.websocket_url, "Max", clip=classroom.clips["bored"]
    ).start()
    try:
        await observer.wait_for_frames(["Max", *ALL_STUDENTS], num_frames=5, timeout=10)
    finally:
        await max_.stop()
    await observer.wait_for(
        ParticipantLeft, lambda e: e.participant.display_name == "Max", since=since
    )


async def test_chat_to_everyone_whisper_to_one_and_messages_in(classroom: Classroom) -> None:
    bot, observer, teacher = classroom.bot, classroom.observer, classroom.teacher
    await bot.send_chat("classpulse is here; say !optout to opt out")
    for member in [teacher, *classroom.students.values()]:
        line = await member.wait_for_line(lambda line: line.text.startswith("classpulse is here"))
        assert not line.whisper

    await bot.send_chat(
        "Ana has looked confused for 30 s", to=observer.participants_by_name[TEACHER]
    )
    line = await teacher.wait_for_line(lambda line: line.text == "Ana has looked confused for 30 s")
    assert line.whisper
    await bot.send_chat("marker after the whisper")
    for student in classroom.students.values():
        await student.wait_for_line(lambda line: line.text == "marker after the whisper")
        assert not any("confused for 30 s" in str(raw.get("text")) for raw in student.record.raw), (
            student.display
        )

    since = len(observer.events)
    await classroom.students["Ana"].say("!optout")
    received = await observer.wait_for(ChatReceived, lambda e: e.text == "!optout", since=since)
    assert received.sender.display_name == "Ana" and not received.whisper
    assert (
        received.sender == observer.participants_by_name["Ana"]
    )  # her video and chat are one person

    link = bot.link
    assert link is not None
    await teacher.say("!status", to=link.chat_username)
    received = await observer.wait_for(ChatReceived, lambda e: e.text == "!status", since=since)
    assert received.whisper and received.sender.display_name == TEACHER

    # The browser student has no chat: a whisper to her is refused clearly, not lost silently.
    with pytest.raises(ChatUnavailableError, match="not in the chat room"):
        await bot.send_chat("hello", to=observer.participants_by_name[BROWSER])
    with pytest.raises(ValueError, match="non-empty"):
        await bot.send_chat("  ")


async def test_chat_flood_and_odd_display_names_are_survived(classroom: Classroom) -> None:
    observer, since = classroom.observer, len(classroom.observer.events)
    await asyncio.gather(*(classroom.teacher.say(f"flood {n} " + "x" * 200) for n in range(300)))
    await classroom.students["Ben"].say("after the flood")
    await observer.wait_for(
        ChatReceived, lambda e: e.text == "after the flood", since=since, timeout=20
    )

    huge = "Z" * 5000
    odd = "Zoë\u202e\u0007 🎓\n名前"
    guests = [
        await JanusParticipant(
            classroom.server.websocket_url, huge, clip=classroom.clips["bored"]
        ).start(),
        await JanusParticipant(
            classroom.server.websocket_url, odd, clip=classroom.clips["bored"]
        ).start(),
    ]
    try:
        long_name = "Z" * (MAX_DISPLAY_NAME_CHARS - 1) + "…"
        for name in (long_name, "Zoë 🎓 名前"):
            await observer.wait_for(ParticipantJoined, _named(name), since=since)
        await observer.wait_for_frames(
            [long_name, "Zoë 🎓 名前", *ALL_STUDENTS], num_frames=5, timeout=15
        )
    finally:
        for guest in guests:
            await guest.stop()
    await observer.wait_for(
        ParticipantLeft, lambda e: e.participant.display_name == "Zoë 🎓 名前", since=since
    )
    assert not observer.ended


async def test_an_h264_student_is_watched_too(classroom: Classroom, h264_clip: EncodedClip) -> None:
    observer, since = classroom.observer, len(classroom.observer.events)
    student = JanusParticipant(classroom.server.websocket_url, "Hana H264", clip=h264_clip)
    await student.start()
    try:
        added = await observer.wait_for(VideoTrackAdded, _named_video("Hana H264"), since=since)
        assert added.codec == "h264"
        frame = (await observer.wait_for_frames(["Hana H264"], num_frames=5, timeout=10))[
            "Hana H264"
        ]
        assert (frame.width, frame.height) == (640, 360)
        assert _close(_corner_rgb(frame), (40, 140, 60)), _corner_rgb(frame)
    finally:
        await student.stop()
    await observer.wait_for(
        ParticipantLeft, lambda e: e.participant == added.participant, since=since
    )


async def test_janus_restart_is_recovered_within_10_s(classroom: Classroom) -> None:
    observer, since = classroom.observer, len(classroom.observer.events)
    await observer.wait_for_frames(ALL_STUDENTS, num_frames=3, timeout=15)
    started = time.monotonic()
    classroom.server.restart()  # SIGKILL, then a fresh process on the same address and rooms

    lost = await observer.wait_for(ConnectionLost, since=since, timeout=5)
    restored = await observer.wait_for(ConnectionRestored, since=since, timeout=10)
    await observer.wait_for_frames(
        ALL_STUDENTS, num_frames=3, timeout=max(0.1, 10 - (time.monotonic() - started))
    )
    elapsed = time.monotonic() - started
    print(f"Janus restart: back and receiving from all students after {elapsed:.1f} s")
    assert elapsed <= 10, f"back and receiving after {elapsed:.1f} s"

    events = [e for _, e in observer.events[since:]]
    before_restore = events[events.index(lost) : events.index(restored)]
    left = {e.participant.display_name for e in before_restore if isinstance(e, ParticipantLeft)}
    assert left >= {*ALL_STUDENTS, TEACHER}  # the gap is explicit: everyone left, then came back
    await observer.wait_for(
        ParticipantJoined,
        lambda e: e.participant.display_name == TEACHER,
        since=events.index(restored) + since,
    )
    assert {p.display_name for p in classroom.bot.participants()} == {*ALL_STUDENTS, TEACHER}
    assert classroom.bot.num_reconnects == 1
    # Chat works again after the restart.
    await classroom.bot.send_chat("back again")
    await classroom.teacher.wait_for_line(lambda line: line.text == "back again")
