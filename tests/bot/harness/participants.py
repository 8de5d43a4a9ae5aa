"""aiortc meeting participants for tests and benchmarks: students who publish a clip, a teacher who
records the chat. They reuse the bot's Janus session and TextRoom client (real components), and
re-join on their own when Janus goes away, as real clients would.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bot.meetings.janus_session import JanusSession
from bot.meetings.janus_textroom import ChatLine, ChatNotice, TextRoomClient
from tests.bot.harness.clips import EncodedClip

logger = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000


class PacketLoopTrack(MediaStreamTrack):
    """Sends a pre-encoded clip (VP8 or H.264) in a loop, paced at its frame rate: aiortc
    packetises the packets as they are, so a publisher costs no encoder time."""

    kind = "video"

    def __init__(self, clip: EncodedClip) -> None:
        super().__init__()
        self.clip = clip
        self._index = 0
        self._start: float | None = None
        #: Wall-clock send time of each frame (monotonic seconds), by frame number; the benchmark
        #: uses it to measure lag.
        self.sent_at: list[float] = []
        self._next: EncodedClip | None = None
        self._first = 0  # frame number at which ``clip`` started
        #: When the first packet of the clip given to ``play`` went out (monotonic seconds).
        self.switched_at: float | None = None

    def play(self, clip: EncodedClip) -> None:
        """Send ``clip`` from its first packet (a keyframe) at the next frame, then loop it: a
        student who changes what the camera sees (turns the head) at a moment the test knows."""
        if clip.fps != self.clip.fps or clip.codec != self.clip.codec:
            raise ValueError(
                f"Expected a {self.clip.codec} clip at {self.clip.fps} fps. "
                f"Received: {clip.codec} at {clip.fps} fps"
            )
        self._next, self.switched_at = clip, None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index / self.clip.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        switching = self._next is not None
        if self._next is not None:
            self.clip, self._next, self._first = self._next, None, self._index
        packets = self.clip.packets
        packet = av.Packet(packets[(self._index - self._first) % len(packets)])
        packet.pts = self._index * VIDEO_CLOCK // self.clip.fps
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.sent_at.append(time.monotonic())
        if switching:
            self.switched_at = self.sent_at[-1]
        self._index += 1
        return packet


@dataclass
class ParticipantRecord:
    """What a participant saw in the chat."""

    lines: list[ChatLine] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)
    notices: list[ChatNotice] = field(default_factory=list)


class JanusParticipant:
    """A student (``clip`` given: publishes it) and/or chat member (``chat``); re-joins on loss."""

    def __init__(
        self,
        websocket_url: str,
        display: str,
        *,
        room: int = 1234,
        text_room: int = 1234,
        clip: EncodedClip | None = None,
        chat: bool = True,
        pin: str | None = None,
        retry_s: float = 0.5,
    ) -> None:
        self.websocket_url = websocket_url
        self.display = display
        self.room = room
        self.text_room = text_room
        self.clip = clip
        self.with_chat = chat
        self.pin = pin
        self.retry_s = retry_s
        self.username = f"user-{secrets.token_hex(4)}"
        self.record = ParticipantRecord()
        self.feed_id: int | None = None
        self.track: PacketLoopTrack | None = None
        self.ready = asyncio.Event()
        self.num_joins = 0
        self._chat: TextRoomClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self, timeout: float = 20.0) -> JanusParticipant:
        self._task = asyncio.create_task(self._run(), name=f"participant {self.display[:20]}")
        async with asyncio.timeout(timeout):
            await self.ready.wait()
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def say(self, text: str, to: str | None = None) -> None:
        """Send a chat line (to everyone, or to the TextRoom username ``to``)."""
        if self._chat is None:
            raise RuntimeError(f"{self.display} has no chat")
        await self._chat.send(text, to=to)

    async def wait_for_line(
        self, predicate: Callable[[ChatLine], bool], timeout: float = 10.0
    ) -> ChatLine:
        async with asyncio.timeout(timeout):
            while True:
                for line in self.record.lines:
                    if predicate(line):
                        return line
                self._changed.clear()
                await self._changed.wait()

    async def _run(self) -> None:
        while True:
            session: JanusSession | None = None
            pc: RTCPeerConnection | None = None
            try:
                session = await JanusSession.connect(self.websocket_url, heartbeat_s=5.0)
                if self.clip is not None:
                    pc = await self._publish(session)
                if self.with_chat:
                    self._chat = TextRoomClient(
                        session,
                        self.text_room,
                        username=self.username,
                        display=self.display,
                        pin=self.pin,
                        on_notice=self._on_notice,
                        on_raw=self.record.raw.append,
                    )
                    await self._chat.join()
                self.num_joins += 1
                self.ready.set()
                waits: list[asyncio.Task[object]] = [asyncio.create_task(session.wait_lost())]
                if self._chat is not None:
                    waits.append(asyncio.create_task(self._chat.failed.wait()))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in waits:
                        task.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.info("participant %s: (re)join failed: %r", self.display[:30], error)
            finally:
                self.ready.clear()
                if self._chat is not None:
                    await _quietly(self._chat.close())
                    self._chat = None
                if pc is not None:
                    await _quietly(pc.close())
                if session is not None:
                    await _quietly(session.close())
            await asyncio.sleep(self.retry_s)

    async def _publish(self, session: JanusSession) -> RTCPeerConnection:
        assert self.clip is not None
        handle = await session.attach("janus.plugin.videoroom")
        body: dict[str, Any] = {
            "request": "join",
            "ptype": "publisher",
            "room": self.room,
            "display": self.display,
        }
        if self.pin:
            body["pin"] = self.pin
        joined = await handle.request(body)
        self.feed_id = joined.data.get("id")
        pc = RTCPeerConnection()
        self.track = PacketLoopTrack(self.clip)
        transceiver = pc.addTransceiver(self.track, direction="sendonly")
        mime = {"vp8": "video/vp8", "h264": "video/h264"}[self.clip.codec]
        # Offer only the clip's codec: its packets are sent as they are.
        codecs = [
            c
            for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType.lower() in (mime, "video/rtx")
        ]
        transceiver.setCodecPreferences(codecs)
        await pc.setLocalDescription(await pc.createOffer())
        local = pc.localDescription
        reply = await handle.request({"request": "publish"}, {"type": local.type, "sdp": local.sdp})
        if reply.jsep is None:
            raise RuntimeError(f"no SDP answer to publish: {reply.data}")
        await pc.setRemoteDescription(
            RTCSessionDescription(sdp=reply.jsep["sdp"], type=reply.jsep["type"])
        )
        return pc

    def _on_notice(self, notice: ChatNotice) -> None:
        self.record.notices.append(notice)
        if isinstance(notice, ChatLine):
            self.record.lines.append(notice)
        self._changed.set()


async def _quietly(awaitable: Any) -> None:
    try:
        async with asyncio.timeout(5):
            await awaitable
    except Exception:
        logger.debug("cleanup step failed", exc_info=True)
