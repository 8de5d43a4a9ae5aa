"""Janus VideoRoom: the bot as a member who publishes nothing, and one multistream subscriber.

- ``VideoRoomMember`` joins as ``ptype: publisher`` without ever publishing — the only way to be
  told about publishers coming and going — under the bot's display name.
- ``VideoRoomSubscriber`` receives every chosen publisher's video on ONE aiortc peer connection.
  Each ``subscribe`` (and every publisher leaving, by Janus's ``autoupdate``) brings a new SDP
  offer; after each one the ``streams`` list Janus sends maps our ``mid``s to feeds. aiortc keeps
  a transceiver's remote track alive when Janus deactivates or reuses its m-line, so frame
  sources are keyed by (mid, feed) and replaced when a mid changes hands.
- Only VP8 and H.264 are subscribed (what aiortc decodes); other codecs are skipped with a log
  line. Simulcast publishers are asked for their lowest layer: the engine needs a face of a few
  dozen pixels, not 720p.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from bot.meetings.frames import FrameSource
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
    if not isinstance(item, dict) or not _is_id(item.get("id")) or item.get("dummy") is True:
        return None
    feed_id: int = item["id"]
    display = item.get("display") if isinstance(item.get("display"), str) else ""
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
    """Active video streams of a subscriber ``streams`` list: ``{mid: (feed_id, codec, simulcast)}``."""
    mapping: dict[str, tuple[int, str, bool]] = {}
    for stream in streams if isinstance(streams, list) else []:
        if (
            not isinstance(stream, dict)
            or stream.get("type") != "video"
            or stream.get("active") is False
        ):
            continue
        mid, feed_id = stream.get("mid"), stream.get("feed_id")
        if isinstance(mid, str) and _is_id(feed_id):
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
        if reply.data.get("videoroom") != "joined" or not _is_id(reply.data.get("id")):
            raise MeetingError(
                f"Expected 'joined' from VideoRoom {self.room}. Received: {reply.data!r:.300}"
            )
        self.id = reply.data["id"]
        self.private_id = (
            reply.data.get("private_id") if _is_id(reply.data.get("private_id")) else None
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
                and _is_id(attendee.get("id"))
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
        if isinstance(joining, dict) and _is_id(joining.get("id")) and joining["id"] != self.id:
            notices.append(MemberPresent(joining["id"], str(joining.get("display") or ""), None))
        unpublished = data.get("unpublished")
        if _is_id(unpublished):
            notices.append(MemberUnpublished(unpublished))
            if not self.notify_joining:
                notices.append(MemberGone(unpublished))
        for key in ("leaving", "kicked"):
            gone = data.get(key)
            if _is_id(gone):
                notices.append(RoomGone(f"{key} the room") if gone == self.id else MemberGone(gone))
        if kind not in ("event", "joined", "talking", "stopped-talking", None) and not notices:
            logger.info("unknown VideoRoom event %r ignored", str(kind)[:40])
        return notices


class VideoRoomSubscriber:
    """One peer connection receiving every watched publisher's video."""

    def __init__(
        self,
        session: JanusSession,
        room: int,
        *,
        private_id: int | None,
        pin: str | None,
        on_video_added: Callable[[int, FrameSource, str], None],
        on_video_removed: Callable[[int], None],
    ) -> None:
        self.session = session
        self.room = room
        self.private_id = private_id
        self.pin = pin
        self._on_added = on_video_added
        self._on_removed = on_video_removed
        self.handle: JanusHandle | None = None
        self.pc: RTCPeerConnection | None = None
        self._lock = asyncio.Lock()
        self._sources: dict[str, tuple[int, FrameSource]] = {}
        self._subscribed: set[int] = set()
        self._gone: set[int] = set()
        self._asked_low: set[tuple[str, int]] = set()
        self._closing: list[FrameSource] = []
        self._task: asyncio.Task[None] | None = None
        self.failed = asyncio.Event()
        self.failure_reason = ""
        self.num_offers = 0

    def feeds(self) -> dict[int, str]:
        """Feeds whose video is flowing now: ``{feed_id: mid}``."""
        return {feed: mid for mid, (feed, _) in self._sources.items()}

    async def add(self, videos: list[PublishedVideo]) -> None:
        """Subscribe to more publishers' videos (ignores ones already subscribed)."""
        fresh = [v for v in videos if v.feed_id not in self._subscribed]
        if not fresh:
            return
        for video in fresh:
            self._subscribed.add(video.feed_id)
            self._gone.discard(video.feed_id)
        streams = [_stream_request(v) for v in fresh]
        if self.handle is None:
            self.handle = await self.session.attach(PLUGIN)
            self._task = asyncio.create_task(self._consume(), name="videoroom-subscriber")
            body: dict[str, Any] = {
                "request": "join",
                "ptype": "subscriber",
                "room": self.room,
                "streams": streams,
            }
            if self.private_id is not None:
                body["private_id"] = self.private_id
            if self.pin:
                body["pin"] = self.pin
        else:
            body = {"request": "subscribe", "streams": streams}
        reply = await self.handle.request(body)
        await self._apply(reply)

    async def remove(self, feed_id: int) -> None:
        """The publisher stopped: end its frames now (Janus renegotiates the m-line away itself)."""
        self._subscribed.discard(feed_id)
        self._gone.add(feed_id)
        for mid, (feed, source) in list(self._sources.items()):
            if feed == feed_id:
                self._end(mid, "publisher left")
        await self._reap()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for mid in list(self._sources):
            self._end(mid, "left")
        await self._reap()
        if self.handle is not None and not self.session.is_lost:
            with contextlib.suppress(MeetingError, TimeoutError):
                await asyncio.wait_for(self.handle.request({"request": "leave"}), 2.0)
        self.handle = None
        if self.pc is not None:
            await self.pc.close()

    async def _consume(self) -> None:
        assert self.handle is not None
        while True:
            event = await self.handle.events.get()
            try:
                if event.kind in ("hangup", "detached"):
                    self._fail(f"Janus sent {event.kind} for the subscriber")
                elif event.kind == "event":
                    await self._apply(event)
            except MeetingError as error:
                self._fail(f"renegotiation failed: {error}")
            except Exception as error:  # an SDP aiortc cannot take: start over rather than go blind
                logger.exception("subscriber event handling failed: %.300r", event.data)
                self._fail(f"renegotiation failed: {error!r}")

    async def _apply(self, event: JanusEvent) -> None:
        """Answer an offer if there is one, then bring the frame sources in line with ``streams``."""
        async with self._lock:
            if event.jsep is not None and event.jsep.get("type") == "offer":
                await self._answer(event.jsep["sdp"])
            if isinstance(event.data.get("streams"), list):
                await self._reconcile(parse_subscription(event.data["streams"]))

    async def _answer(self, sdp: str) -> None:
        assert self.handle is not None
        if self.pc is None:
            self.pc = RTCPeerConnection()
            self.pc.on("connectionstatechange", self._on_connection_state)
        self.num_offers += 1
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        local = self.pc.localDescription
        await self.handle.request({"request": "start"}, {"type": local.type, "sdp": local.sdp})

    async def _reconcile(self, wanted: dict[str, tuple[int, str, bool]]) -> None:
        assert self.handle is not None
        for mid, (feed, _) in list(self._sources.items()):
            if wanted.get(mid, (None,))[0] != feed:
                self._end(mid, "stream removed")
        tracks = {t.mid: t.receiver.track for t in self.pc.getTransceivers()} if self.pc else {}
        low = []
        for mid, (feed, codec, simulcast) in wanted.items():
            if mid in self._sources or feed in self._gone or feed not in self._subscribed:
                continue
            track = tracks.get(mid)
            if track is None:
                logger.warning(
                    "Janus listed mid %r for feed %s but the SDP has no such track", mid, feed
                )
                continue
            source = FrameSource(track, name=f"feed {feed} mid {mid}")
            self._sources[mid] = (feed, source)
            self._on_added(feed, source, codec)
            if simulcast and (mid, feed) not in self._asked_low:
                self._asked_low.add((mid, feed))
                low.append({"mid": mid, "substream": 0, "temporal": 2})
        await self._reap()
        if low:
            await self.handle.request({"request": "configure", "streams": low})

    def _end(self, mid: str, reason: str) -> None:
        """End one mid's frames and report it, with no await in between: nobody can observe the
        participant leaving before their video did."""
        feed, source = self._sources.pop(mid)
        source.close(reason)
        self._closing.append(source)
        self._on_removed(feed)

    async def _reap(self) -> None:
        closing, self._closing = self._closing, []
        for source in closing:
            await source.aclose()

    def _on_connection_state(self) -> None:
        if self.pc is not None and self.pc.connectionState in ("failed", "closed"):
            self._fail(f"peer connection {self.pc.connectionState}")

    def _fail(self, reason: str) -> None:
        if not self.failed.is_set():
            self.failure_reason = reason
            self.failed.set()


def _stream_request(video: PublishedVideo) -> dict[str, Any]:
    stream: dict[str, Any] = {"feed": video.feed_id}
    if video.mid is not None:
        stream["mid"] = video.mid
    if video.simulcast:
        stream.update(substream=0, temporal=2)
    return stream


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
