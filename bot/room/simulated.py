"""Simulated participants: aiortc clients that join a room over the same signalling as a browser.

Used by the demo (students whose expression changes on a schedule, so that alerts appear) and by
the tests (two students and a teacher with real peer connections to the server). A participant
streams any video track (``FaceVideoTrack`` for a student), receives its tiles, and records the
chat, the roster and how its socket was closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bot.room.faces import DEFAULT_SCHEDULE, FaceVideoTrack, load_face_photos, student_schedule
from bot.room.ice import host_addresses

logger = logging.getLogger(__name__)

_TINTS = ((120, 90, 60), (60, 110, 90), (90, 70, 120), (70, 100, 130), (110, 110, 70), (80, 80, 80))


@dataclass
class ReceivedTile:
    """One receive slot of a simulated participant: frames counted, the newest kept."""

    mid: str
    num_frames: int = 0
    latest: av.VideoFrame | None = field(default=None, repr=False)


class SimulatedParticipant:
    """A room member driven from Python. ``start()`` joins and waits for the media to connect."""

    def __init__(
        self,
        base_url: str,
        room: str,
        name: str,
        *,
        track: MediaStreamTrack | None = None,
        teacher_token: str | None = None,
        receive_tiles: bool = True,
        ice_addresses: tuple[str, ...] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme)
        if scheme is None or not parts.netloc:
            raise ValueError(
                f"Expected the app's base URL such as http://127.0.0.1:8080. Received: {base_url!r}"
            )
        self.url = f"{scheme}://{parts.netloc}/rooms/{room}/ws"
        self.name = name
        self.track = track
        self.teacher_token = teacher_token
        self.receive_tiles = receive_tiles
        #: Local ICE addresses; by default 127.0.0.1 for a room on a loopback address.
        self.ice_addresses = ice_addresses or _loopback_for(parts.hostname or "")
        #: From the welcome message.
        self.id: str | None = None
        self.role: str | None = None
        self.participants: list[dict[str, Any]] = []
        self.tile_names: dict[str, str] = {}
        self.tiles: dict[str, ReceivedTile] = {}
        self.chat: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self.pc: RTCPeerConnection | None = None
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._answer: asyncio.Future[str] | None = None
        self._welcome: dict[str, Any] = {}

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self, timeout: float = 20.0) -> SimulatedParticipant:
        """Join, publish, wait until the peer connection is up (raises ``TimeoutError``,
        ``ConnectionError`` when the server closed the socket)."""
        async with asyncio.timeout(timeout):
            await self.connect()
            await self.wait_for(lambda: self.id is not None)
            await self._negotiate()
            await self.wait_for(
                lambda: self.pc is not None and self.pc.connectionState == "connected"
            )
            if self.track is not None:
                await self.send({"type": "camera", "on": True})
        return self

    async def connect(self) -> None:
        """Open the socket and send ``join`` (``start`` does the rest)."""
        self._session = aiohttp.ClientSession()
        self._socket = await self._session.ws_connect(self.url, max_msg_size=1 << 22)
        self._reader = asyncio.create_task(self._read(), name=f"simulated {self.name[:20]}")
        join: dict[str, Any] = {"type": "join", "name": self.name}
        if self.teacher_token is not None:
            join["teacher"] = self.teacher_token
        await self.send(join)

    async def stop(self) -> None:
        """Leave: close the socket and the peer connection. Idempotent."""
        if self._socket is not None and not self._socket.closed:
            with contextlib.suppress(Exception):
                await self._socket.close()
        for task in [self._reader, *self._tasks]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        if self.pc is not None:
            await self.pc.close()
        if self.track is not None:
            self.track.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- talking ----------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        if self._socket is None or self._socket.closed:
            raise ConnectionError(
                f"{self.name}: socket closed ({self.close_code} {self.close_reason})"
            )
        await self._socket.send_json(message)

    async def send_raw(self, data: str | bytes) -> None:
        """Send a frame as is (the tests' bad input)."""
        assert self._socket is not None
        if isinstance(data, bytes):
            await self._socket.send_bytes(data)
        else:
            await self._socket.send_str(data)

    async def say(self, text: str, to: str | None = None) -> None:
        message: dict[str, Any] = {"type": "chat", "text": text}
        if to is not None:
            message["to"] = to
        await self.send(message)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate()`` holds; ``ConnectionError`` if the socket closes first."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.close_code is not None:
                    raise ConnectionError(
                        f"{self.name}: closed with {self.close_code} {self.close_reason!r}"
                    )
                self._changed.clear()
                await self._changed.wait()

    async def wait_closed(self, timeout: float = 10.0) -> tuple[int, str]:
        """The close code and reason once the server closed this socket."""
        async with asyncio.timeout(timeout):
            while self.close_code is None:
                self._changed.clear()
                await self._changed.wait()
        return self.close_code, self.close_reason

    def frames_from(self, name: str) -> int:
        """Frames received so far in the tile showing ``name``."""
        return sum(
            tile.num_frames for mid, tile in self.tiles.items() if self.tile_names.get(mid) == name
        )

    # -- internals ----------------------------------------------------------------------------

    async def _negotiate(self) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        pc.on("connectionstatechange", self._changed.set)
        pc.on("track", self._on_track)
        pc.addTransceiver(self.track if self.track is not None else "video", direction="sendonly")
        welcome_tiles = self._welcome.get("tiles", 0) if self.receive_tiles else 0
        for _ in range(int(welcome_tiles)):
            pc.addTransceiver("video", direction="recvonly")
        with host_addresses(self.ice_addresses):
            await pc.setLocalDescription(await pc.createOffer())
        self._answer = asyncio.get_running_loop().create_future()
        await self.send({"type": "offer", "sdp": pc.localDescription.sdp})
        sdp = await self._answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        for transceiver in pc.getTransceivers():
            if transceiver.direction == "recvonly":
                self.tiles.setdefault(str(transceiver.mid), ReceivedTile(str(transceiver.mid)))

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.pc is not None
        mid = next((str(t.mid) for t in self.pc.getTransceivers() if t.receiver.track is track), "")
        tile = self.tiles.setdefault(mid, ReceivedTile(mid))
        task = asyncio.ensure_future(self._drain(track, tile))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, track: MediaStreamTrack, tile: ReceivedTile) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    tile.num_frames += 1
                    tile.latest = frame
                    self._changed.set()

    async def _read(self) -> None:
        socket = self._socket
        assert socket is not None
        reason = ""
        try:
            while True:
                message = await socket.receive()
                if message.type == aiohttp.WSMsgType.CLOSE:
                    reason = str(message.extra or "")
                    break
                if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._handle(message.json())
        finally:
            self.close_code = socket.close_code if socket.close_code is not None else 1006
            self.close_reason = reason
            if self._answer is not None and not self._answer.done():
                self._answer.set_exception(
                    ConnectionError(f"{self.name}: closed {self.close_code} {reason!r}")
                )
            self._changed.set()

    def _handle(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "welcome":
            self._welcome = data
            self.id, self.role = data["id"], data["role"]
        elif kind == "answer" and self._answer is not None and not self._answer.done():
            self._answer.set_result(data["sdp"])
        elif kind == "participants":
            self.participants = data["participants"]
        elif kind == "tiles":
            self.tile_names = {tile["mid"]: tile["name"] for tile in data["tiles"]}
        elif kind == "chat":
            self.chat.append(data)
        self._changed.set()


def _loopback_for(host: str) -> tuple[str, ...] | None:
    try:
        return (
            ("127.0.0.1",)
            if host == "localhost" or ipaddress.ip_address(host).is_loopback
            else None
        )
    except ValueError:
        return None


async def start_students(
    base_url: str,
    room: str,
    names: Sequence[str],
    *,
    faces: Path | None = None,
    schedule: Sequence[tuple[str, float]] = DEFAULT_SCHEDULE,
    receive_tiles: bool = False,
    timeout: float = 30.0,
) -> list[SimulatedParticipant]:
    """Students ``names`` joining ``room``, each streaming a face (from ``faces``, or the bundled
    portrait) that follows ``schedule``. Started one after another; on failure the ones already
    started are stopped. ``receive_tiles=False`` saves the server the tiles' encoding."""
    photos = load_face_photos(faces)
    students: list[SimulatedParticipant] = []
    try:
        for index, name in enumerate(names):
            track = FaceVideoTrack(
                student_schedule(photos, index, schedule), tint=_TINTS[index % len(_TINTS)]
            )
            student = SimulatedParticipant(
                base_url, room, name, track=track, receive_tiles=receive_tiles
            )
            students.append(student)
            await student.start(timeout)
    except BaseException:
        for student in students:
            await student.stop()
        raise
    return students
