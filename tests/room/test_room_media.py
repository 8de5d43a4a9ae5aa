"""Two simulated aiortc students, a simulated teacher and the bot's connector in one room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.meetings import (
    ChatReceived,
    MeetingConnector,
    MeetingEnded,
    MeetingEvent,
    ParticipantJoined,
    ParticipantLeft,
    VideoTrackAdded,
    VideoTrackRemoved,
)
from bot.meetings.frames import FrameSource, FrameSourceClosedError
from bot.meetings.protocol import ChatUnavailableError, Participant
from bot.room import BuiltinRoomConnector, Room
from bot.room.simulated import SimulatedParticipant, start_students
from tests.room.conftest import RoomServer

pytestmark = pytest.mark.timeout(120)


class EventLog:
    """Reads a connector's events into a list; ``wait`` for one that matches."""

    def __init__(self, connector: MeetingConnector) -> None:
        self.events: list[MeetingEvent] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read(connector.events()))

    async def _read(self, events: AsyncIterator[MeetingEvent]) -> None:
        async for event in events:
            self.events.append(event)
            self._changed.set()

    async def wait(
        self, kind: type, name: str | None = None, timeout: float = 15.0
    ) -> MeetingEvent:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    participant = getattr(event, "participant", None) or getattr(
                        event, "sender", None
                    )
                    if isinstance(event, kind) and (
                        name is None or (participant and participant.display_name == name)
                    ):
                        return event
                self._changed.clear()
                await self._changed.wait()

    def kinds_for(self, name: str) -> list[str]:
        return [
            type(e).__name__
            for e in self.events
            if getattr(getattr(e, "participant", None), "display_name", None) == name
        ]


@pytest.fixture
async def classroom(
    room_server: RoomServer,
) -> AsyncIterator[tuple[Room, BuiltinRoomConnector, EventLog, list[SimulatedParticipant]]]:
    room = room_server.registry.create("class7", teacher_name="Ms Tanaka")
    bot = BuiltinRoomConnector(room_server.registry, "class7")
    assert isinstance(bot, MeetingConnector)
    await bot.join()
    log = EventLog(bot)
    students = await start_students(
        room_server.base_url, "class7", ["Aiko", "Ben"], receive_tiles=True
    )
    teacher = SimulatedParticipant(
        room_server.base_url, "class7", "anyone", teacher_token=room.teacher_token
    )
    await teacher.start()
    people = [*students, teacher]
    try:
        yield room, bot, log, people
    finally:
        for person in people:
            await person.stop()
        await bot.leave()
        log.task.cancel()


async def test_everyone_sees_each_other_by_name_and_gets_frames(classroom) -> None:
    _, bot, log, (aiko, ben, teacher) = classroom
    for name in ("Aiko", "Ben"):
        added = await log.wait(VideoTrackAdded, name)
        assert isinstance(added, VideoTrackAdded) and added.codec == "vp8"
        assert isinstance(added.source, FrameSource), added.source
        first = await added.source.next(timeout=10)
        second = await added.source.next(timeout=10)
        assert (first.width, first.height) == (640, 360) and second.index > first.index
    await log.wait(ParticipantJoined, "Ms Tanaka")
    assert sorted(p.display_name for p in bot.participants()) == ["Aiko", "Ben", "Ms Tanaka"]
    assert [p.display_name for p in bot.teachers()] == ["Ms Tanaka"]
    assert teacher.role == "teacher" and aiko.role == "student"
    assert "VideoTrackAdded" not in log.kinds_for("Ms Tanaka")  # no camera, no video event

    # Browsers see the others in tiles, scaled down, with frames flowing.
    await aiko.wait_for(lambda: aiko.frames_from("Ben") >= 5, timeout=10)
    await ben.wait_for(lambda: ben.frames_from("Aiko") >= 5, timeout=10)
    await teacher.wait_for(
        lambda: teacher.frames_from("Aiko") >= 5 and teacher.frames_from("Ben") >= 5, timeout=10
    )
    tile = next(t for mid, t in teacher.tiles.items() if teacher.tile_names.get(mid) == "Aiko")
    assert tile.latest is not None and (tile.latest.width, tile.latest.height) == (320, 180)
    assert {p["name"] for p in aiko.participants} == {"classpulse bot", "Aiko", "Ben", "Ms Tanaka"}


async def test_chat_to_everyone_and_whispers_to_the_teacher_only(classroom) -> None:
    _, bot, log, (aiko, ben, teacher) = classroom
    await log.wait(ParticipantJoined, "Ms Tanaka")
    [teacher_participant] = bot.teachers()
    await bot.send_chat("hello class")
    await bot.send_chat("Aiko looks confused", to=teacher_participant)
    for person in (aiko, ben, teacher):
        await person.wait_for(
            lambda p=person: any(m["text"] == "hello class" for m in p.chat), timeout=5
        )
    await teacher.wait_for(
        lambda: any(m["text"] == "Aiko looks confused" for m in teacher.chat), timeout=5
    )
    whisper = next(m for m in teacher.chat if m["text"] == "Aiko looks confused")
    assert whisper["whisper"] is True and whisper["from"]["role"] == "bot"
    await asyncio.sleep(0.3)
    for student in (aiko, ben):
        assert [m["text"] for m in student.chat] == ["hello class"]

    # A student's line to everyone and a whisper to the bot reach the bot; a whisper between two
    # students does not, and reaches no one else.
    await aiko.say("!status")
    bot_id = next(p["id"] for p in aiko.participants if p["role"] == "bot")
    await ben.say("!optout", to=bot_id)
    await ben.say("psst", to=aiko.id)
    said = await log.wait(ChatReceived, "Aiko")
    assert isinstance(said, ChatReceived) and (said.text, said.whisper) == ("!status", False)
    whispered = await log.wait(ChatReceived, "Ben")
    assert isinstance(whispered, ChatReceived) and (whispered.text, whispered.whisper) == (
        "!optout",
        True,
    )
    await aiko.wait_for(lambda: any(m["text"] == "psst" for m in aiko.chat), timeout=5)
    await asyncio.sleep(0.3)
    assert not any(isinstance(e, ChatReceived) and e.text == "psst" for e in log.events)
    assert not any(m["text"] in ("psst", "!optout") for m in teacher.chat)

    with pytest.raises(ValueError):
        await bot.send_chat("x" * 4001)
    with pytest.raises(ChatUnavailableError):
        await bot.send_chat("to nobody", to=Participant("m999", "Ghost"))


async def test_camera_off_and_leaving_end_the_frame_source(classroom) -> None:
    _, _, log, (aiko, ben, _) = classroom
    added = await log.wait(VideoTrackAdded, "Aiko")
    assert isinstance(added, VideoTrackAdded)
    await added.source.next(timeout=10)
    await aiko.send({"type": "camera", "on": False})
    await log.wait(VideoTrackRemoved, "Aiko")
    with pytest.raises(FrameSourceClosedError):
        async with asyncio.timeout(5):
            while True:
                await added.source.next()
    await ben.wait_for(lambda: "Aiko" not in ben.tile_names.values(), timeout=5)

    await aiko.send({"type": "camera", "on": True})
    async with asyncio.timeout(10):
        while log.kinds_for("Aiko").count("VideoTrackAdded") < 2:
            await asyncio.sleep(0.05)
    await ben.wait_for(lambda: "Aiko" in ben.tile_names.values(), timeout=5)

    await aiko.stop()
    await log.wait(ParticipantLeft, "Aiko")
    assert log.kinds_for("Aiko") == [
        "ParticipantJoined",
        "VideoTrackAdded",
        "VideoTrackRemoved",
        "VideoTrackAdded",
        "VideoTrackRemoved",
        "ParticipantLeft",
    ]
    await ben.wait_for(lambda: "Aiko" not in {p["name"] for p in ben.participants}, timeout=5)


async def test_closing_the_room_ends_the_meeting_and_every_peer_connection(
    room_server: RoomServer,
) -> None:
    room = room_server.registry.create("closing")
    bot = BuiltinRoomConnector(room_server.registry, "closing")
    await bot.join()
    log = EventLog(bot)
    students = await start_students(room_server.base_url, "closing", ["Aiko"], receive_tiles=True)
    try:
        await log.wait(VideoTrackAdded, "Aiko")
        peers = [room.peer(member.id) for member in room.members() if member.role == "student"]
        await room_server.runner.cleanup()  # app shutdown: on_shutdown closes every room
        ended = await log.wait(MeetingEnded)
        assert isinstance(ended, MeetingEnded) and ended.reason == "server shutting down"
        assert log.kinds_for("Aiko")[-2:] == ["VideoTrackRemoved", "ParticipantLeft"]
        assert all(peer is not None and peer.pc is None for peer in peers)
        await students[0].wait_closed()
        assert (students[0].close_code, students[0].close_reason) == (1001, "server shutting down")
        await asyncio.wait_for(log.task, 5)  # the event stream ended
    finally:
        for student in students:
            await student.stop()
        await bot.leave()
