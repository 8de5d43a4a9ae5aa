"""The bot in a built-in room: the ``MeetingConnector`` protocol, in-process, no media sent.

The bot joins the room object directly (no socket, no peer connection): it is a member with the
role ``bot``, gets room events through a callback, and reads each participant's camera as the
server decoded it, through the room's ``MediaRelay`` with ``buffered=False``. The browsers' tiles
and the bot are separate subscribers, so neither a slow encoder nor a slow model starves the
other: each falls behind by skipping frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiortc.mediastreams import MediaStreamTrack

from bot.meetings.events import EventStream
from bot.meetings.frames import FrameSource
from bot.meetings.protocol import (
    ChatReceived,
    ChatUnavailableError,
    MeetingConnector,
    MeetingEnded,
    MeetingError,
    MeetingEvent,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    VideoTrackAdded,
    VideoTrackRemoved,
    check_chat_text,
    normalize_display_name,
)
from bot.meetings.url import is_builtin_url, parse_builtin_url
from bot.room.events import (
    ChatPosted,
    MemberJoined,
    MemberLeft,
    RoomClosed,
    RoomEvent,
    VideoStarted,
    VideoStopped,
)
from bot.room.messages import ProtocolViolation
from bot.room.peer import MemberInfo
from bot.room.room import Room, RoomRegistry

logger = logging.getLogger(__name__)

DEFAULT_DISPLAY_NAME = "classpulse bot"


class BuiltinRoomConnector:
    """The bot's seat in a built-in room. See ``bot.meetings.protocol`` for the contract.

    ``rooms`` is the app's ``RoomRegistry`` (``setup_room``'s result); ``room`` the room's name.
    Chat events waiting for the consumer are capped at ``max_pending_chat`` (a flood drops chat,
    never joins or videos)."""

    def __init__(
        self,
        rooms: RoomRegistry,
        room: str,
        *,
        display_name: str = DEFAULT_DISPLAY_NAME,
        max_pending_chat: int = 256,
    ) -> None:
        self.rooms = rooms
        self.room_name = room
        self.display_name = normalize_display_name(display_name, fallback=DEFAULT_DISPLAY_NAME)
        self._stream = EventStream(max_pending_chat)
        self._room: Room | None = None
        self._me: MemberInfo | None = None
        self._people: dict[str, Participant] = {}
        self._roles: dict[str, str] = {}
        #: Per member with a live camera: the frame source handed out, and the relay view it reads.
        self._sources: dict[str, tuple[FrameSource, MediaStreamTrack]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._joined = False

    # -- MeetingConnector ----------------------------------------------------------------------

    async def join(self) -> None:
        if self._joined or self._stream.ended:
            raise MeetingError(
                "Expected join() once on a fresh connector. Received: a second join()"
            )
        self._joined = True
        room = self.rooms.get(self.room_name)
        if room is None or room.closed:
            self._end()
            raise MeetingError(
                f"Expected an open built-in room. Received: {self.room_name!r}, which is not open"
            )
        try:
            self._me = room.add_bot(self.display_name, self._on_room_event)
        except ProtocolViolation as error:
            self._end()
            raise MeetingError(f"cannot join room {self.room_name!r}: {error.reason}") from error
        self._room = room
        for member in room.members():
            if member.id == self._me.id or member.role == "bot":
                continue
            self._member_joined(member)
            codec = room.video_codec(member.id)
            if codec is not None:
                self._video_started(member, codec)

    async def leave(self) -> None:
        room, self._room = self._room, None
        if room is not None and self._me is not None:
            room.remove_bot(self._me.id)
        for member_id in list(self._sources):
            self._close_source(member_id, "bot left")
        self._people.clear()
        for task in list(self._closing):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._end()

    @property
    def num_dropped_chat(self) -> int:
        return self._stream.num_dropped_chat

    def events(self) -> AsyncIterator[MeetingEvent]:
        return self._stream.__aiter__()

    async def send_chat(self, text: str, to: Participant | None = None) -> None:
        check_chat_text(text)
        room, me = self._room, self._me
        if room is None or me is None:
            raise ChatUnavailableError(f"not in room {self.room_name!r} (not joined, or it closed)")
        if to is not None and to.id not in self._people:
            raise ChatUnavailableError(f"{to.display_name!r} ({to.id}) is not in the room")
        if not room.post_chat(me.id, text, to.id if to is not None else None):
            raise ChatUnavailableError(
                f"{to.display_name if to else '?'!r} left before the message"
            )

    def participants(self) -> tuple[Participant, ...]:
        return tuple(self._people.values())

    # -- what the built-in room adds -----------------------------------------------------------

    def role_of(self, participant: Participant) -> str | None:
        """``"teacher"`` (opened the teacher link) or ``"student"``; ``None`` when not present."""
        return self._roles.get(participant.id)

    def teachers(self) -> tuple[Participant, ...]:
        return tuple(p for p in self._people.values() if self._roles.get(p.id) == "teacher")

    # -- room events → meeting events -----------------------------------------------------------

    def _on_room_event(self, event: RoomEvent) -> None:
        if self._stream.ended:
            return
        if isinstance(event, MemberJoined):
            if event.member.role != "bot":
                self._member_joined(event.member)
        elif isinstance(event, MemberLeft):
            participant = self._people.pop(event.member.id, None)
            self._roles.pop(event.member.id, None)
            if participant is not None:
                self._close_source(event.member.id, "participant left")
                self._put(ParticipantLeft(participant))
        elif isinstance(event, VideoStarted):
            self._video_started(event.member, event.codec)
        elif isinstance(event, VideoStopped):
            self._close_source(event.member.id, "video stopped")
        elif isinstance(event, ChatPosted):
            sender = self._people.get(event.sender.id)
            if sender is not None and self._me is not None and event.to in (None, self._me.id):
                self._put(ChatReceived(sender, event.text, event.to is not None, event.t))
        elif isinstance(event, RoomClosed):
            self._room = None
            for member_id in list(self._sources):
                self._close_source(member_id, "room closed")
            for participant in list(self._people.values()):
                self._put(ParticipantLeft(participant))
            self._people.clear()
            self._put(MeetingEnded(event.reason))
            self._end()

    def _member_joined(self, member: MemberInfo) -> None:
        participant = Participant(member.id, member.display_name, is_host=member.role == "teacher")
        self._people[member.id] = participant
        self._roles[member.id] = member.role
        self._put(ParticipantJoined(participant))

    def _video_started(self, member: MemberInfo, codec: str) -> None:
        participant = self._people.get(member.id)
        if participant is None or member.id in self._sources or self._room is None:
            return
        track = self._room.subscribe_video(member.id)
        if track is None:
            return
        source = FrameSource(track, name=f"member {participant.id}")  # names stay out of logs
        self._sources[member.id] = (source, track)
        self._put(VideoTrackAdded(participant, source, codec))

    def _close_source(self, member_id: str, reason: str) -> None:
        entry = self._sources.pop(member_id, None)
        if entry is None:
            return
        participant = self._people.get(member_id)
        if participant is not None:
            self._put(VideoTrackRemoved(participant))
        task = asyncio.get_running_loop().create_task(self._stop_source(*entry, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _stop_source(source: FrameSource, track: MediaStreamTrack, reason: str) -> None:
        # A stopped relay view never wakes a recv() already waiting: cancel the reader first.
        await source.aclose(reason)
        track.stop()

    # -- the event stream -------------------------------------------------------------------------

    def _put(self, event: MeetingEvent) -> None:
        self._stream.put(event)

    def _end(self) -> None:
        self._stream.end()


def builtin_connector_factory(
    rooms: RoomRegistry,
) -> Callable[[str, str], tuple[MeetingConnector, str, str] | None]:
    """For ``BotRuntime(connector_factories=[...])``: ``builtin:NAME`` → (connector, platform,
    room); ``None`` for any other kind of URL."""

    def factory(url: str, bot_name: str) -> tuple[MeetingConnector, str, str] | None:
        if not is_builtin_url(url):
            return None
        room = parse_builtin_url(url).room
        return BuiltinRoomConnector(rooms, room, display_name=bot_name), "builtin", room

    return factory
