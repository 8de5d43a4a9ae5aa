"""The room's pure parts: tile assignment, message parsing, limits, URLs, faces, ICE addresses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aioice.ice
import cv2
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from bot.meetings.url import BuiltinMeetingUrl, parse_any_meeting_url, parse_builtin_url
from bot.room.connector import BuiltinRoomConnector, builtin_connector_factory
from bot.room.faces import FaceVideoTrack, bundled_face_path, load_face_photos, student_schedule
from bot.room.ice import host_addresses
from bot.room.messages import (
    Camera,
    Chat,
    Join,
    Offer,
    ProtocolViolation,
    close_reason,
    parse_client_message,
)
from bot.room.room import RoomRegistry, TokenBucket
from bot.room.settings import RoomSettings
from bot.room.tiles import TileTrack, assign_tiles
from bot.room.web import room_settings_of
from bot.runtime import validate_meeting_url


def test_tiles_stay_put_and_free_ones_go_to_the_next_in_line() -> None:
    assert assign_tiles((None, None), ["a", "b", "c"]) == ("a", "b")
    assert assign_tiles(("a", "b"), ["c", "b", "a"]) == ("a", "b")  # no reshuffle
    assert assign_tiles(("a", "b"), ["c", "b"]) == ("c", "b")  # a left: c takes the free tile
    assert assign_tiles(("a", None, None), ["a"]) == ("a", None, None)
    assert assign_tiles((), ["a"]) == ()


def test_client_messages_parse_strictly() -> None:
    assert parse_client_message('{"type": "join", "name": "Aiko"}', max_bytes=100) == Join(
        "Aiko", None
    )
    assert parse_client_message(
        '{"type": "join", "name": "A", "teacher": "t"}', max_bytes=100
    ) == Join("A", "t")
    assert parse_client_message(
        '{"type": "offer", "sdp": "v=0\\r\\nm=video"}', max_bytes=100
    ) == Offer("v=0\r\nm=video")
    assert parse_client_message('{"type": "camera", "on": false}', max_bytes=100) == Camera(False)
    assert parse_client_message(
        '{"type": "chat", "text": "hi", "to": "m2"}', max_bytes=100
    ) == Chat("hi", "m2")
    bad = [
        ('{"type": "chat", "text": "  "}', "chat.text: empty"),
        ('{"type": "chat", "text": "hi", "to": 3}', "chat.to: expected a string"),
        ('{"type": "join"}', "join: missing name"),
        ('{"type": ["join"]}', "unknown message type 'list'"),
        ('"join"', "expected a JSON object, received str"),
        ("[" * 100_000, "over 1000 bytes"),
        ("[" * 900 + "]" * 900, "expected a JSON object, received list"),
        ("NaN", "expected a JSON object"),
    ]
    for data, reason in bad:
        with pytest.raises(ProtocolViolation) as raised:
            parse_client_message(data, max_bytes=1000 if len(data) > 2000 else 10_000)
        assert reason in raised.value.reason, (data[:30], raised.value.reason)
    deep = "[" * 50_000 + "]" * 50_000
    with pytest.raises(ProtocolViolation):
        parse_client_message(deep, max_bytes=200_000)


def test_close_reasons_fit_a_control_frame() -> None:
    assert close_reason("short") == "short"
    long = close_reason("é" * 200)
    assert len(long.encode()) <= 123 and long.endswith("...")


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(3, 2.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] = 100.0  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_settings_are_validated_and_loopback_hosts_use_loopback_ice() -> None:
    assert RoomSettings.for_host("127.0.0.1").ice_addresses == ("127.0.0.1",)
    assert RoomSettings.for_host("localhost").ice_addresses == ("127.0.0.1",)
    assert RoomSettings.for_host("0.0.0.0").ice_addresses is None
    assert RoomSettings.for_host("::1", max_rooms=3).max_rooms == 3
    for bad in (
        {"max_tiles_per_student": 17},
        {"tile_width": 321},
        {"tile_fps": 0},
        {"ice_addresses": ("nope",)},
    ):
        with pytest.raises(ValueError, match="Received"):
            RoomSettings(**bad)

    class AppSettings:
        host = "127.0.0.1"

    assert room_settings_of(AppSettings()).ice_addresses == ("127.0.0.1",)
    assert room_settings_of(None) == RoomSettings()
    with pytest.raises(TypeError):
        room_settings_of(42)


def test_registry_names_rooms_and_makes_secret_teacher_links() -> None:
    registry = RoomRegistry(RoomSettings(max_rooms=2))
    room = registry.create("class-7", teacher_name="  Ms\u202e Tanaka ")
    assert room.teacher_name == "Ms Tanaka"  # the bidi override is gone
    assert (
        room.teacher_path == f"/rooms/class-7#teacher={room.teacher_token}"
        and len(room.teacher_token) >= 32
    )
    assert registry.create("other").teacher_token != room.teacher_token
    for name, message in (
        ("class-7", "which exists"),
        ("../x", "letters, digits"),
        ("x" * 65, "letters"),
        ("third", "at most 2"),
    ):
        with pytest.raises(ValueError, match=message):
            registry.create(name)


def test_builtin_urls() -> None:
    assert parse_builtin_url("builtin:class-7") == BuiltinMeetingUrl("class-7")
    assert parse_any_meeting_url(" builtin:a ") == BuiltinMeetingUrl("a")
    assert parse_any_meeting_url("janus+ws://127.0.0.1/?room=3").room == 3
    assert BuiltinMeetingUrl("a").redacted() == "builtin:a"
    for bad in ("builtin:", "builtin:a/b", "builtin:-x", "builtin:" + "x" * 65, "http://x/rooms/a"):
        with pytest.raises(ValueError, match="Received"):
            validate_meeting_url(bad)
        with pytest.raises(ValueError, match="Received"):
            parse_builtin_url(bad)


async def test_connector_factory_makes_builtin_connectors_only() -> None:
    registry = RoomRegistry(RoomSettings())
    factory = builtin_connector_factory(registry)
    assert factory("janus+ws://127.0.0.1/?room=1", "bot") is None
    made = factory("builtin:class", "Helper")
    assert made is not None
    connector, platform, room = made
    assert isinstance(connector, BuiltinRoomConnector) and (platform, room) == ("builtin", "class")
    assert connector.display_name == "Helper"
    from bot.meetings import MeetingError

    with pytest.raises(MeetingError, match="not open"):
        await connector.join()


def test_bundled_face_is_found_and_cropped() -> None:
    assert bundled_face_path() is not None, (
        "matplotlib's sample portrait is part of the dependencies"
    )
    [photo] = load_face_photos(None)
    height, width = photo.image.shape[:2]
    assert height == width and 100 <= height < 600
    track = FaceVideoTrack(student_schedule([photo], 0))
    frame = track.render(1.0)
    assert frame.shape == (360, 640, 3) and frame.std() > 20
    assert not np.array_equal(frame, track.render(2.0))  # it moves


def test_face_folders_give_each_student_one_subject_on_a_schedule(tmp_path: Path) -> None:
    # JAFFE-style names on synthetic pictures (never dataset images in the repo).
    for subject, shade in (("AA", 60), ("BB", 180)):
        for expression in ("NE", "AN", "HA"):
            image = np.full((64, 64), shade, np.uint8)
            cv2.putText(image, expression, (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, 255 - shade, 2)
            cv2.imwrite(str(tmp_path / f"{subject}.{expression}1.{shade}.tiff"), image)
    (tmp_path / "notes.txt").write_text("not an image")
    photos = load_face_photos(tmp_path)
    assert len(photos) == 6
    plan = student_schedule(photos, 1, (("neutral", 2.0), ("angry", 3.0), ("happy", 1.0)))
    assert [(f.photo.subject, f.photo.expression, f.seconds) for f in plan] == [
        ("BB", "neutral", 2.0),
        ("BB", "angry", 3.0),
        ("BB", "happy", 1.0),
    ]
    track = FaceVideoTrack(plan)
    assert [plan[track.phase_at(t)].photo.expression for t in (0.5, 2.5, 5.5, 6.5)] == [
        "neutral",
        "angry",
        "happy",
        "neutral",
    ]
    with pytest.raises(FileNotFoundError, match="Received: none readable"):
        load_face_photos(tmp_path / "empty")


def test_taiwanese_names_give_performer_and_expression(tmp_path: Path) -> None:
    # The Taiwanese database's PPTVEnn.jpg names on synthetic pictures: performer 03, front view.
    for name in ("0311a01.jpg", "0311d02.jpg", "0321d05.jpg", "0711b01.jpg", "0311x01.jpg"):
        cv2.imwrite(str(tmp_path / name), np.full((64, 48, 3), 90, np.uint8))
    photos = {p.name: (p.subject, p.expression) for p in load_face_photos(tmp_path)}
    assert photos == {
        "0311a01.jpg": ("TW03", "neutral"),
        "0311d02.jpg": ("TW03", "angry"),
        "0321d05.jpg": ("TW03", "angry"),
        "0711b01.jpg": ("TW07", "happy"),
        "0311x01.jpg": ("", ""),  # not the naming scheme: shown, but tells no expression
    }
    plan = student_schedule(load_face_photos(tmp_path), 0, (("neutral", 1.0), ("angry", 2.0)))
    assert [(f.photo.subject, f.photo.expression) for f in plan] == [
        ("TW03", "neutral"),
        ("TW03", "angry"),
    ]


async def test_ice_override_applies_to_the_block_only() -> None:
    async def gathered(addresses: tuple[str, ...] | None) -> set[str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="sendonly")
        with host_addresses(addresses):
            await pc.setLocalDescription(await pc.createOffer())
        found = {
            line.split()[4]
            for line in pc.localDescription.sdp.splitlines()
            if line.startswith("a=candidate:")
        }
        await pc.close()
        return found

    assert await gathered(("127.0.0.1",)) == {"127.0.0.1"}
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(
        True, True
    )  # outside: aioice's own answer
    outside = await asyncio.gather(gathered(None), gathered(("127.0.0.1",)))
    assert "127.0.0.1" not in outside[0] and outside[1] == {"127.0.0.1"}


async def test_tiles_are_thinned_to_their_rate_and_scaled() -> None:
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    now = [0.0]

    class Camera(MediaStreamTrack):
        """15 fps on a fake clock, 45 frames, then the person leaves."""

        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        async def recv(self) -> av.VideoFrame:
            if self.count == 45:
                raise MediaStreamError
            self.count += 1
            now[0] += 1 / 15
            return av.VideoFrame.from_ndarray(np.zeros((360, 640, 3), np.uint8), format="bgr24")

    tile = TileTrack(width=320, height=180, fps=10, clock=lambda: now[0])
    camera = Camera()
    tile.show(camera)
    frames = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):  # after the camera ends the tile waits for someone else
            while True:
                frames.append(await tile.recv())
    assert 29 <= len(frames) <= 31  # 3 s of 15 fps → 10 fps
    assert {(f.width, f.height) for f in frames} == {(320, 180)}
    assert tile.source is None and tile.readyState == "live"
    tile.stop()
    with pytest.raises(MediaStreamError):
        await tile.recv()


async def test_a_socket_that_does_not_read_is_closed_not_queued_for() -> None:
    from bot.room.peer import Outbox

    class StuckSocket:
        """Takes a message, then never finishes sending it (a client that stopped reading)."""

        closed = False

        def __init__(self) -> None:
            self.sent: list[dict[str, object]] = []
            self.closed_with: tuple[int, bytes] | None = None

        async def send_json(self, message: dict[str, object]) -> None:
            self.sent.append(message)
            await asyncio.Event().wait()

        async def close(self, *, code: int, message: bytes) -> None:
            self.closed_with = (code, message)
            self.closed = True

    socket = StuckSocket()
    outbox = Outbox(socket, 8, "test")  # type: ignore[arg-type]
    for index in range(20):
        outbox.send({"n": index})
    await asyncio.wait_for(outbox.wait_closed(), 2)
    assert socket.closed_with == (4429, b"not reading its messages")
    assert len(socket.sent) <= 1
