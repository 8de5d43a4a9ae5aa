"""Janus VideoRoom: what the room says, and the bot as a member who publishes nothing.

``VideoRoomMember`` joins as ``ptype: publisher`` without ever publishing — the only way to be
told about publishers coming and going — under the bot's display name, and turns the room's
events into small notices. Only VP8 and H.264 videos are chosen for watching (what aiortc
decodes); a publisher with another codec is present but unwatched, with a log line. The
receiving side is ``janus_subscriber.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from bot.meetings.janus_session import JanusEvent, JanusHandle, JanusSession
from bot.meetings.protocol import MeetingError

logger = logging.getLogger(__name__)

PLUGIN = "janus.plugin.videoroom"
SUPPORTED_VIDEO_CODECS = ("vp8", "h264")


@dataclass(frozen=True, slots=True)
class PublishedVideo:
    """The one video stream of a publisher that the bot will watch."""

    feed_id: int
    mid: str | None
    codec: str
    simulcast: bool


@dataclass(frozen=True, slots=True)
class Publisher:
    feed_id: int
    display: str
    #: ``None`` when the publisher sends no video the bot can decode.
    video: PublishedVideo | None


@dataclass(frozen=True, slots=True)
class MemberPresent:
    """Someone is in the room: a publisher (with ``video``) or, with notify_joining, an attendee."""

    feed_id: int
    display: str
    video: PublishedVideo | None


@dataclass(frozen=True, slots=True)
class MemberUnpublished:
    feed_id: int


@dataclass(frozen=True, slots=True)
class MemberGone:
    feed_id: int


@dataclass(frozen=True, slots=True)
class RoomGone:
    reason: str


RoomNotice = MemberPresent | MemberUnpublished | MemberGone | RoomGone


def parse_publisher(item: object) -> Publisher | None:
    """One entry of a ``publishers`` list; ``None`` when it is not a usable entry."""
    if not isinstance(item, dict) or not is_janus_id(item.get("id")) or item.get("dummy") is True:
        return None
    feed_id: int = item["id"]
    display = item["display"] if isinstance(item.get("display"), str) else ""
    video = None
    skipped = []
    streams = item.get("streams")
    for stream in streams if isinstance(streams, list) else []:
        if (
            not isinstance(stream, dict)
            or stream.get("type") != "video"
            or stream.get("disabled") is True
        ):
            continue
        codec = str(stream.get("codec") or "").lower()
        if codec not in SUPPORTED_VIDEO_CODECS:
            skipped.append(codec or "unknown")
            continue
        mid = stream.get("mid") if isinstance(stream.get("mid"), str) else None
        video = PublishedVideo(feed_id, mid, codec, simulcast=bool(stream.get("simulcast")))
        break
    if video is None and skipped:
        logger.warning(
            "not watching %r (feed %s): video codec %s is not supported (only %s)",
            display[:64],
            feed_id,
            ", ".join(skipped),
            ", ".join(SUPPORTED_VIDEO_CODECS),
        )
    return Publisher(feed_id, display, video)


def parse_subscription(streams: object) -> dict[str, tuple[int, str, bool]]:
    """Active video streams in a subscriber ``streams`` list: ``{mid: (feed, codec, simul)}``."""
    mapping: dict[str, tuple[int, str, bool]] = {}
    for stream in streams if isinstance(streams, list) else []:
        if (
            not isinstance(stream, dict)
            or stream.get("type") != "video"
            or stream.get("active") is False
        ):
            continue
        mid, feed_id = stream.get("mid"), stream.get("feed_id")
        if isinstance(mid, str) and is_janus_id(feed_id):
            codec = str(stream.get("codec") or "").lower()
            mapping[mid] = (feed_id, codec, bool(stream.get("simulcast")))
    return mapping


class VideoRoomMember:
    """The bot's own presence in the room. News go to ``on_notice``; ``failed`` is set on hangup."""

    def __init__(
        self,
        session: JanusSession,
        room: int,
        display: str,
        pin: str | None,
        on_notice: Callable[[RoomNotice], None],
    ) -> None:
        self.session = session
        self.room = room
        self.display = display
        self.pin = pin
        self._on_notice = on_notice
        self.handle: JanusHandle | None = None
        self.id = 0
        self.private_id: int | None = None
        self.notify_joining = False
        self._task: asyncio.Task[None] | None = None

    async def join(self) -> list[MemberPresent]:
        """Join; returns who is in the room already."""
        self.handle = await self.session.attach(PLUGIN)
        body: dict[str, Any] = {
            "request": "join",
            "ptype": "publisher",
            "room": self.room,
            "display": self.display,
        }
        if self.pin:
            body["pin"] = self.pin
        reply = await self.handle.request(body)
        if reply.data.get("videoroom") != "joined" or not is_janus_id(reply.data.get("id")):
            raise MeetingError(
                f"Expected 'joined' from VideoRoom {self.room}. Received: {reply.data!r:.300}"
            )
        self.id = reply.data["id"]
        self.private_id = (
            reply.data.get("private_id") if is_janus_id(reply.data.get("private_id")) else None
        )
        # "attendees" is only sent by rooms with notify_joining: then "leaving" is reliable for
        # everyone, otherwise non-publishers are invisible and "unpublished" means gone.
        self.notify_joining = "attendees" in reply.data
        present = [
            self._present(p) for p in map(parse_publisher, _list(reply.data.get("publishers"))) if p
        ]
        for attendee in _list(reply.data.get("attendees")):
            if (
                isinstance(attendee, dict)
                and is_janus_id(attendee.get("id"))
                and attendee["id"] != self.id
            ):
                present.append(
                    MemberPresent(attendee["id"], str(attendee.get("display") or ""), None)
                )
        self._task = asyncio.create_task(self._consume(), name="videoroom-member")
        return [p for p in present if p.feed_id != self.id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.handle is not None and not self.session.is_lost:
            with contextlib.suppress(MeetingError, TimeoutError):
                await asyncio.wait_for(self.handle.request({"request": "leave"}), 2.0)
        self.handle = None

    @staticmethod
    def _present(publisher: Publisher) -> MemberPresent:
        return MemberPresent(publisher.feed_id, publisher.display, publisher.video)

    async def _consume(self) -> None:
        assert self.handle is not None
        while True:
            event = await self.handle.events.get()
            try:
                for notice in self._notices(event):
                    self._on_notice(notice)
            except Exception:  # one odd event must not stop the room's news
                logger.exception("VideoRoom event handling failed: %.300r", event)

    def _notices(self, event: JanusEvent) -> list[RoomNotice]:
        data = event.data
        if event.kind in ("hangup", "detached"):
            return [RoomGone(f"Janus sent {event.kind} for the bot's room handle")]
        if event.kind != "event":
            return []
        kind = data.get("videoroom")
        if kind == "destroyed":
            return [RoomGone("room destroyed")]
        notices: list[RoomNotice] = []
        for publisher in map(parse_publisher, _list(data.get("publishers"))):
            if publisher and publisher.feed_id != self.id:
                notices.append(self._present(publisher))
        joining = data.get("joining")
        if (
            isinstance(joining, dict)
            and is_janus_id(joining.get("id"))
            and joining["id"] != self.id
        ):
            notices.append(MemberPresent(joining["id"], str(joining.get("display") or ""), None))
        unpublished = data.get("unpublished")
        if is_janus_id(unpublished):
            notices.append(MemberUnpublished(unpublished))
            if not self.notify_joining:
                notices.append(MemberGone(unpublished))
        for key in ("leaving", "kicked"):
            gone = data.get(key)
            if is_janus_id(gone):
                notices.append(RoomGone(f"{key} the room") if gone == self.id else MemberGone(gone))
        if kind not in ("event", "joined", "talking", "stopped-talking", None) and not notices:
            logger.info("unknown VideoRoom event %r ignored", str(kind)[:40])
        return notices


def is_janus_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
