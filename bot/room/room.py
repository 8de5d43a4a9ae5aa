"""A built-in class room: who is in it, who sees whom, chat; and the registry of rooms of one app.

The room is the only place that knows every member. Browsers reach it through the signalling
socket (``bot.room.signalling``); bots join in-process (``BuiltinRoomConnector``) and hear about
the room through events. Whispers go to their one recipient only: that is how alerts reach the
teacher and never a student.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from bot.meetings.protocol import check_chat_text, normalize_display_name
from bot.room.events import (
    ChatPosted,
    MemberJoined,
    MemberLeft,
    RoomClosed,
    RoomEvent,
    RoomListener,
    VideoStarted,
    VideoStopped,
)
from bot.room.messages import (
    CLOSE_CONFLICT,
    CLOSE_FORBIDDEN,
    CLOSE_GOING_AWAY,
    CLOSE_MEDIA_FAILED,
    CLOSE_RATE_LIMITED,
    CLOSE_ROOM_FULL,
    Join,
    ProtocolViolation,
    chat_message,
    participants_message,
    tiles_message,
)
from bot.room.peer import MemberInfo, Outbox, Peer
from bot.room.settings import ROOM_NAME_PATTERN, RoomSettings
from bot.room.tiles import assign_tiles

logger = logging.getLogger(__name__)


class TokenBucket:
    """``burst`` actions at once, refilled at ``rate_per_s``: how joins and chat are limited."""

    def __init__(
        self, burst: int, rate_per_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.rate_per_s = rate_per_s
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class Room:
    """One class room. Created by ``RoomRegistry.create``; the teacher link holds its token."""

    def __init__(
        self, name: str, settings: RoomSettings, *, teacher_name: str | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        #: Whoever presents this token in the page URL (``#teacher=``) is the teacher.
        self.teacher_token = secrets.token_urlsafe(24)
        #: When set, the teacher always appears under this name and no student may take it.
        self.teacher_name = normalize_display_name(teacher_name) if teacher_name else None
        self.relay = MediaRelay()
        self.closed = False
        self._ids = (f"m{n}" for n in itertools.count(1))
        self._peers: dict[str, Peer] = {}
        self._bots: dict[str, tuple[MemberInfo, RoomListener]] = {}
        self._order: list[str] = []
        self._joins = TokenBucket(settings.join_burst, settings.joins_per_s)

    @property
    def teacher_path(self) -> str:
        """The teacher link, relative to the app (keep it secret: it makes its holder teacher).

        The token rides in the fragment (``#teacher=``): browsers never send a fragment to the
        server, so it stays out of access logs, proxies and ``Referer`` headers."""
        return f"/rooms/{self.name}#teacher={self.teacher_token}"

    @property
    def student_path(self) -> str:
        return f"/rooms/{self.name}"

    def members(self) -> tuple[MemberInfo, ...]:
        """Everyone present (bots included), in join order."""
        return tuple(self._info(member_id) for member_id in self._order)

    def peer(self, member_id: str) -> Peer | None:
        return self._peers.get(member_id)

    def is_teacher_token(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.teacher_token.encode())

    # -- browsers -----------------------------------------------------------------------------

    def admit(
        self,
        join: Join,
        outbox: Outbox,
        *,
        num_tiles_for: Callable[[str], int],
        welcome: Callable[[Peer], dict[str, Any]],
    ) -> Peer:
        """Take a browser in, or raise ``ProtocolViolation`` (room full, join flood, wrong token,
        a student using the teacher's name). ``welcome(peer)`` is its first message, before the
        roster everyone (the newcomer included) gets next."""
        if self.closed:
            raise ProtocolViolation(CLOSE_GOING_AWAY, "room closed")
        # The teacher link first: the teacher can always get into their own class, whatever a
        # crowd (or a flood) did to the room; teachers do not count towards the cap.
        role = "student"
        if join.teacher_token is not None:
            if not self.is_teacher_token(join.teacher_token):
                raise ProtocolViolation(CLOSE_FORBIDDEN, "wrong teacher token")
            role = "teacher"
        if role == "student":
            num_students = sum(1 for p in self._peers.values() if p.info.role != "teacher")
            if num_students >= self.settings.max_participants:
                raise ProtocolViolation(
                    CLOSE_ROOM_FULL, f"room full ({self.settings.max_participants} people)"
                )
            if not self._joins.take():
                raise ProtocolViolation(
                    CLOSE_RATE_LIMITED, "too many joins; try again in a few seconds"
                )
        name = normalize_display_name(join.name)
        if role == "teacher" and self.teacher_name:
            name = self.teacher_name
        if role == "student" and name.casefold() in self._reserved_names():
            raise ProtocolViolation(
                CLOSE_CONFLICT, f"the name {name!r} is the teacher's; choose another"
            )
        info = MemberInfo(next(self._ids), name, role)
        peer = Peer(
            info,
            outbox,
            settings=self.settings,
            relay=self.relay,
            num_tiles=num_tiles_for(role),
            on_media_change=self._media_changed,
            on_media_failed=self._media_failed,
        )
        self._peers[info.id] = peer
        self._order.append(info.id)
        logger.info("room %s: %s joined as %s", self.name, info.id, role)
        logger.debug("room %s: %s is called %r", self.name, info.id, name)
        outbox.send(welcome(peer))
        self._emit(MemberJoined(info))
        self._refresh()
        return peer

    async def remove(self, peer: Peer) -> None:
        """A browser left (socket closed for whatever reason)."""
        if self._peers.pop(peer.info.id, None) is None:
            return
        self._order.remove(peer.info.id)
        was_live = peer.reported_live
        peer.reported_live = False
        await peer.close()
        if was_live:
            self._emit(VideoStopped(peer.info))
        self._emit(MemberLeft(peer.info))
        logger.info("room %s: %s left", self.name, peer.info.id)
        self._refresh()

    # -- bots -----------------------------------------------------------------------------------

    def add_bot(self, display_name: str, listener: RoomListener) -> MemberInfo:
        """An in-process member that sends no media and hears the room through ``listener``."""
        if self.closed:
            raise ProtocolViolation(CLOSE_GOING_AWAY, "room closed")
        info = MemberInfo(
            next(self._ids), normalize_display_name(display_name, fallback="classpulse bot"), "bot"
        )
        self._emit(MemberJoined(info))  # the others first; the new bot is told nothing of itself
        self._bots[info.id] = (info, listener)
        self._order.append(info.id)
        self._refresh()
        return info

    def remove_bot(self, bot_id: str) -> None:
        entry = self._bots.pop(bot_id, None)
        if entry is not None:
            self._order.remove(bot_id)
            self._emit(MemberLeft(entry[0]))
            self._refresh()

    def video_codec(self, member_id: str) -> str | None:
        """The codec of a member's live camera (``""`` when unknown), ``None`` when not live."""
        peer = self._peers.get(member_id)
        return peer.codec if peer is not None and peer.reported_live else None

    def subscribe_video(self, member_id: str) -> MediaStreamTrack | None:
        """A newest-frame-wins view (``MediaRelay``, unbuffered) of a member's camera as the server
        received it, full size; ``None`` when that camera is not live. Stop it when done."""
        peer = self._peers.get(member_id)
        return peer.subscribe() if peer is not None else None

    # -- chat -------------------------------------------------------------------------------------

    def post_chat(self, sender_id: str, text: str, to: str | None = None) -> bool:
        """Deliver a chat line to everyone, or to ``to`` only (and back to its sender).

        Returns ``False`` when ``to`` is not present (a whisper to someone who just left). Raises
        ``ValueError`` for an empty or oversize text."""
        check_chat_text(text)
        sender = self._info(sender_id)
        if to is not None and to not in self._peers and to not in self._bots:
            return False
        t = time.time()
        event = ChatPosted(sender, text, to, t)
        recipients = (
            dict.fromkeys((to, sender_id)) if to is not None else dict.fromkeys(self._order)
        )
        for member_id in recipients:
            if member_id in self._bots:
                if member_id != sender_id:
                    self._bots[member_id][1](event)
            elif member_id in self._peers:
                self._peers[member_id].outbox.send(
                    chat_message(
                        sender_id=sender.id,
                        sender_name=sender.display_name,
                        sender_role=sender.role,
                        text=text,
                        whisper=to is not None,
                        t=t,
                    )
                )
        return True

    # -- the room as a whole -------------------------------------------------------------------

    async def close(self, reason: str = "room closed") -> None:
        """Close every socket and peer connection, tell the bots. Idempotent."""
        if self.closed:
            return
        self.closed = True
        peers = list(self._peers.values())
        for peer in peers:
            peer.outbox.close(CLOSE_GOING_AWAY, reason)
        for peer in peers:
            await self.remove(peer)
        for peer in peers:
            await peer.outbox.wait_closed()
        for _, listener in list(self._bots.values()):
            listener(RoomClosed(reason))
        self._bots.clear()
        self._order.clear()

    def _info(self, member_id: str) -> MemberInfo:
        if member_id in self._peers:
            return self._peers[member_id].info
        if member_id in self._bots:
            return self._bots[member_id][0]
        raise KeyError(f"Expected a member of room {self.name!r}. Received: {member_id!r}")

    def _reserved_names(self) -> set[str]:
        names = {
            peer.info.display_name.casefold()
            for peer in self._peers.values()
            if peer.info.role == "teacher"
        }
        if self.teacher_name:
            names.add(self.teacher_name.casefold())
        return names

    def _emit(self, event: RoomEvent) -> None:
        for _, listener in list(self._bots.values()):
            try:
                listener(event)
            except Exception:  # a bot's bug must not break the room for the class
                logger.exception("room %s: listener failed on %s", self.name, type(event).__name__)

    def _media_changed(self, peer: Peer) -> None:
        live = peer.video_live
        if live != peer.reported_live:
            peer.reported_live = live
            self._emit(VideoStarted(peer.info, peer.codec) if live else VideoStopped(peer.info))
        self._refresh()

    def _media_failed(self, peer: Peer, reason: str) -> None:
        logger.info("room %s: %s: %s", self.name, peer.info.id, reason)
        peer.outbox.close(CLOSE_MEDIA_FAILED, reason)

    def _refresh(self) -> None:
        """Send everyone the roster, and give each viewer's free tiles to people on camera."""
        if self.closed:
            return
        roster = [
            {
                "id": info.id,
                "name": info.display_name,
                "role": info.role,
                "camera": bool(info.id in self._peers and self._peers[info.id].video_live),
            }
            for info in self.members()
        ]
        live = [
            member_id
            for member_id in self._order
            if member_id in self._peers and self._peers[member_id].video_live
        ]
        teachers = [m for m in live if self._peers[m].info.role == "teacher"]
        students = [m for m in live if self._peers[m].info.role != "teacher"]
        for viewer in self._peers.values():
            viewer.outbox.send(participants_message(roster))
            if not viewer.tiles:
                continue
            ordered = students + teachers if viewer.info.role == "teacher" else teachers + students
            wanted = assign_tiles(viewer.shown, [m for m in ordered if m != viewer.info.id])
            if wanted == viewer.shown:
                continue
            for (_, tile), before, after in zip(viewer.tiles, viewer.shown, wanted, strict=True):
                if before != after:
                    tile.show(self._peers[after].subscribe() if after is not None else None)
            viewer.shown = wanted
            viewer.outbox.send(
                tiles_message(
                    [
                        {
                            "mid": mid,
                            "id": member_id,
                            "name": self._peers[member_id].info.display_name,
                        }
                        for (mid, _), member_id in zip(viewer.tiles, wanted, strict=True)
                        if member_id is not None
                    ]
                )
            )


class RoomRegistry:
    """The rooms of one app. ``create`` makes a room and its teacher token."""

    def __init__(self, settings: RoomSettings) -> None:
        self.settings = settings
        self._rooms: dict[str, Room] = {}
        self._name_pattern = re.compile(ROOM_NAME_PATTERN)

    def create(self, name: str, *, teacher_name: str | None = None) -> Room:
        if not isinstance(name, str) or not self._name_pattern.fullmatch(name):
            raise ValueError(
                "Expected a room name of letters, digits, '-' and '_' (at most 64). "
                f"Received: {name!r}"
            )
        if name in self._rooms:
            raise ValueError(f"Expected a new room name. Received: {name!r}, which exists")
        if len(self._rooms) >= self.settings.max_rooms:
            raise ValueError(
                f"Expected at most {self.settings.max_rooms} rooms at once. "
                f"Received: one more ({name!r})"
            )
        room = Room(name, self.settings, teacher_name=teacher_name)
        self._rooms[name] = room
        logger.info("room %s created; teacher link: %s", name, room.student_path + "#teacher=…")
        return room

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def rooms(self) -> tuple[Room, ...]:
        return tuple(self._rooms.values())

    async def close_room(self, name: str, reason: str = "room closed") -> None:
        room = self._rooms.pop(name, None)
        if room is not None:
            await room.close(reason)

    async def close(self, reason: str = "server shutting down") -> None:
        """Close every room: every socket, peer connection and bot. For ``app.on_shutdown``."""
        for name in list(self._rooms):
            await self.close_room(name, reason)
