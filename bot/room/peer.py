"""One browser (or simulated student) in a room: its outgoing messages and its peer connection.

Media shape, per browser: one ``RTCPeerConnection`` to the server; the browser's offer carries
one send-only video m-line (its camera, possibly without a track yet) and up to N receive-only
ones (the tiles it shows). The server never renegotiates: a tile switches person by switching
the ``TileTrack`` behind its sender, and a camera turned on later is a ``replaceTrack`` in the
browser. What the browser publishes is decoded once here and fanned out through the room's
``MediaRelay`` to the tiles of every viewer and to the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription

from bot.meetings import decoded_frames, keyframes
from bot.room.ice import host_addresses
from bot.room.messages import (
    CLOSE_BAD_MESSAGE,
    CLOSE_RATE_LIMITED,
    ProtocolViolation,
    close_reason,
)
from bot.room.settings import RoomSettings
from bot.room.tiles import TileTrack

logger = logging.getLogger(__name__)

ROLES = ("teacher", "student", "bot")


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """Someone in a room as everyone else sees them."""

    #: Room-made id (``m1``, ``m2``, …), never reused within the room.
    id: str
    #: Normalised display name.
    display_name: str
    #: ``"teacher"`` (opened the teacher link), ``"student"`` or ``"bot"``.
    role: str


class Outbox:
    """Messages to one socket, written by one task. Bounded: a socket that stops reading is
    closed rather than let its queue (and the server's memory) grow."""

    def __init__(self, socket: web.WebSocketResponse, max_messages: int, label: str) -> None:
        self.socket = socket
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(max_messages)
        self._task = asyncio.get_running_loop().create_task(self._write(), name=f"outbox {label}")
        self.close_code: int | None = None
        self.close_text = ""

    def send(self, message: dict[str, Any]) -> None:
        if self.close_code is not None:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.close(CLOSE_RATE_LIMITED, "not reading its messages")

    def close(self, code: int, reason: str) -> None:
        """Close after the messages already queued (idempotent; the first reason wins)."""
        if self.close_code is not None:
            return
        self.close_code, self.close_text = code, close_reason(reason)
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:  # it stopped reading: drop the backlog, close now
            self._task.cancel()
            self._task = asyncio.get_running_loop().create_task(self._close_now())

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._close_now()

    async def _close_now(self) -> None:
        if not self.socket.closed:
            code = self.close_code if self.close_code is not None else 1000
            with contextlib.suppress(Exception):
                await self.socket.close(code=code, message=self.close_text.encode())

    async def _write(self) -> None:
        while True:
            message = await self._queue.get()
            if message is None:
                await self._close_now()
                return
            try:
                await self.socket.send_json(message)
            except (ConnectionError, RuntimeError):
                return  # the socket is gone; the reader notices and removes the member


class Peer:
    """A browser or simulated student: its socket's outbox, its media, its camera flag."""

    def __init__(
        self,
        info: MemberInfo,
        outbox: Outbox,
        *,
        settings: RoomSettings,
        relay: MediaRelay,
        num_tiles: int,
        on_media_change: Callable[[Peer], None],
        on_media_failed: Callable[[Peer, str], None],
    ) -> None:
        self.info = info
        self.outbox = outbox
        self.settings = settings
        self.num_tiles = num_tiles
        self.camera_on = False
        self.pc: RTCPeerConnection | None = None
        #: The camera as received (decoded) from this browser; ``None`` until it arrives.
        self.track: MediaStreamTrack | None = None
        self.codec = ""
        #: Receive slots of this browser: (SDP mid, track), in m-line order.
        self.tiles: list[tuple[str, TileTrack]] = []
        #: Who each slot shows (member id or ``None``), same order as ``tiles``.
        self.shown: tuple[str | None, ...] = ()
        self._relay = relay
        self._on_media_change = on_media_change
        self._on_media_failed = on_media_failed
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = False
        #: What the room last told its listeners (``VideoStarted`` / ``VideoStopped``).
        self.reported_live = False

    @property
    def video_live(self) -> bool:
        """The camera is on and its track is flowing to the server: tiles and the bot may use it."""
        return self.camera_on and self.track is not None and self.connected

    def subscribe(self) -> MediaStreamTrack | None:
        """A new newest-frame-wins view of this camera (``None`` when it is off)."""
        if not self.video_live or self.track is None:
            return None
        return self._relay.subscribe(self.track, buffered=False)

    async def answer(self, offer_sdp: str) -> str:
        """Set up the media from the browser's offer; returns the answer SDP.

        Raises ``ProtocolViolation`` for an offer this room does not accept (anything but video,
        more than one camera, more receive slots than ``num_tiles``, SDP aiortc cannot use)."""
        if self.pc is not None:
            raise ProtocolViolation(
                CLOSE_BAD_MESSAGE, "offer: already made (the room never renegotiates)"
            )
        try:
            parsed = SessionDescription.parse(offer_sdp)
        except Exception as error:
            raise ProtocolViolation(
                CLOSE_BAD_MESSAGE, f"offer.sdp: not understood ({type(error).__name__})"
            ) from None
        directions = [str(media.direction) for media in parsed.media]
        if any(media.kind != "video" for media in parsed.media):
            raise ProtocolViolation(CLOSE_BAD_MESSAGE, "offer: only video m-lines are accepted")
        num_send = sum(direction in ("sendonly", "sendrecv") for direction in directions)
        num_receive = sum(direction == "recvonly" for direction in directions)
        if (
            num_send > 1
            or num_receive > self.num_tiles
            or num_send + num_receive != len(directions)
        ):
            raise ProtocolViolation(
                CLOSE_BAD_MESSAGE,
                f"offer: expected at most 1 sendonly and {self.num_tiles} recvonly video m-lines, "
                f"received {' '.join(directions)[:60]}",
            )
        keyframes.install()  # a browser's lost frame: wait for its keyframe, decode nothing broken
        decoded_frames.install()  # cameras decoded on the loop by FFmpeg, as the bot's are
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", lambda: self._on_state(pc))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            for transceiver, media in zip(pc.getTransceivers(), parsed.media, strict=True):
                if media.direction == "recvonly":
                    tile = TileTrack(
                        width=self.settings.tile_width,
                        height=self.settings.tile_height,
                        fps=self.settings.tile_fps,
                    )
                    transceiver.direction = "sendonly"
                    transceiver.sender.replaceTrack(tile)
                    self.tiles.append((str(transceiver.mid), tile))
            self.shown = (None,) * len(self.tiles)
            with host_addresses(self.settings.ice_addresses):
                await pc.setLocalDescription(await pc.createAnswer())
        except ProtocolViolation:
            raise
        except Exception as error:
            logger.info("offer from %s refused: %r", self.info.id, error)
            raise ProtocolViolation(
                CLOSE_BAD_MESSAGE, f"offer: not accepted ({type(error).__name__}: {error})"
            ) from None
        answer = pc.localDescription.sdp
        self.codec = _send_codec(answer)
        self._spawn(self._watch_connect(pc), "connect-timeout")
        return answer

    def set_camera(self, on: bool) -> None:
        if on != self.camera_on:
            self.camera_on = on
            self._on_media_change(self)

    async def close(self) -> None:
        """Close the peer connection and every task; idempotent."""
        for _, tile in self.tiles:
            tile.stop()
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        pc, self.pc = self.pc, None
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()
        if self.track is not None:
            self.track = None
            self.connected = False

    # -- aiortc callbacks ---------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "video" or self.track is not None:
            return
        self.track = track
        # Keep the decoder's queue empty even when nobody watches: aiortc queues every decoded
        # frame until someone reads it. The relay reads the track from the first subscriber on.
        self._spawn(self._drain(self._relay.subscribe(track, buffered=False)), "drain")
        track.on("ended", self._on_track_ended)
        self._on_media_change(self)

    def _on_track_ended(self) -> None:
        if self.track is not None:
            self.track = None
            self._on_media_change(self)

    def _on_state(self, pc: RTCPeerConnection) -> None:
        if pc is not self.pc:
            return
        state = pc.connectionState
        if state == "connected" and not self.connected:
            self.connected = True
            self._on_media_change(self)
        elif state in ("failed", "closed") and self.pc is not None:
            was_live = self.video_live
            self.connected = False
            if was_live:
                self._on_media_change(self)
            self._on_media_failed(self, f"media connection {state}")

    async def _watch_connect(self, pc: RTCPeerConnection) -> None:
        await asyncio.sleep(self.settings.connect_timeout_s)
        if pc is self.pc and not self.connected:
            self._on_media_failed(
                self, f"media connection not up after {self.settings.connect_timeout_s:g} s"
            )

    async def _drain(self, proxy: MediaStreamTrack) -> None:
        try:
            while True:
                await proxy.recv()
        except MediaStreamError:
            pass
        finally:
            proxy.stop()

    def _spawn(self, coroutine: Awaitable[None], label: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(f"{label} {self.info.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _send_codec(answer_sdp: str) -> str:
    """The codec the browser's camera arrives in, from our answer (e.g. ``"vp8"``)."""
    with contextlib.suppress(Exception):
        for media in SessionDescription.parse(answer_sdp).media:
            if media.direction == "recvonly" and media.rtp.codecs:
                return media.rtp.codecs[0].mimeType.split("/")[-1].lower()
    return ""
