"""One aiortc peer connection receiving every watched publisher's video from Janus (multistream).

Each ``subscribe`` (and every publisher leaving, by Janus's ``autoupdate``) brings a new SDP
offer; after each one the ``streams`` list Janus sends maps our ``mid``s to feeds. aiortc keeps a
transceiver's remote track alive when Janus deactivates or recycles its m-line, so frame sources
are keyed by (mid, feed) and replaced when a mid changes hands (see ``aiortc_compat.py`` for the
SSRC a recycled m-line brings). Simulcast publishers are asked for their lowest spatial layer at
full frame rate: the engine needs a face of a few dozen pixels, several times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from bot.meetings import decoded_frames, keyframes
from bot.meetings.aiortc_compat import (
    decline_abs_send_time,
    enlarge_receive_buffers,
    rebind_recycled_receivers,
)
from bot.meetings.frames import FrameSource
from bot.meetings.janus_session import JanusError, JanusEvent, JanusHandle, JanusSession
from bot.meetings.janus_videoroom import PLUGIN, PublishedVideo, parse_subscription
from bot.meetings.protocol import MeetingError

logger = logging.getLogger(__name__)


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
        """Subscribe to more publishers' videos (ignores ones already subscribed).

        A feed Janus refuses (typically: it left between its announcement and our request) is
        skipped with a log line; one refused feed never costs the others their subscription.
        Raises only when the connection itself fails."""
        fresh = [v for v in videos if v.feed_id not in self._subscribed]
        if not fresh:
            return
        try:
            await self._subscribe(fresh)
        except JanusError as error:
            if len(fresh) == 1:
                logger.warning("cannot watch feed %s: %s", fresh[0].feed_id, error)
                return
            for video in fresh:  # find the refused one(s): one request per feed
                try:
                    await self._subscribe([video])
                except JanusError as single_error:
                    logger.warning("cannot watch feed %s: %s", video.feed_id, single_error)

    async def _subscribe(self, videos: list[PublishedVideo]) -> None:
        streams = [_stream_request(v) for v in videos]
        first = self.handle is None
        if first:
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
        for video in videos:
            self._subscribed.add(video.feed_id)
            self._gone.discard(video.feed_id)
        assert self.handle is not None
        try:
            reply = await self.handle.request(body)
        except JanusError:
            for video in videos:
                self._subscribed.discard(video.feed_id)
            if first:  # a handle that never joined cannot "subscribe": start afresh next time
                await self._forget_handle()
            raise
        await self._apply(reply)

    async def _forget_handle(self) -> None:
        handle, task = self.handle, self._task
        self.handle, self._task = None, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if handle is not None:
            with contextlib.suppress(MeetingError, TimeoutError):
                await asyncio.wait_for(handle.detach(), 2.0)

    async def remove(self, feed_id: int) -> None:
        """The publisher stopped: end its frames now (Janus renegotiates the m-line away itself)."""
        self._subscribed.discard(feed_id)
        self._gone.add(feed_id)
        for mid, (feed, _) in list(self._sources.items()):
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
        """Answer the offer if any, then bring the frame sources in line with ``streams``."""
        async with self._lock:
            if event.jsep is not None and event.jsep.get("type") == "offer":
                await self._answer(event.jsep["sdp"])
            if isinstance(event.data.get("streams"), list):
                await self._reconcile(parse_subscription(event.data["streams"]))

    async def _answer(self, sdp: str) -> None:
        assert self.handle is not None
        if self.pc is None:
            decoded_frames.install()  # decoded frames reach the frame sources without a loop wake-up
            keyframes.install()  # after a lost frame, wait for a keyframe: no broken pictures
            self.pc = RTCPeerConnection()
            self.pc.on("connectionstatechange", self._on_connection_state)
        self.num_offers += 1
        sdp = decline_abs_send_time(sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        rebind_recycled_receivers(self.pc, sdp)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        enlarge_receive_buffers(self.pc)  # a shard's packets must outlast a busy loop
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
