"""Bad input on the room's socket closes the offending socket with a reason; the room survives."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import aiohttp
import av
import pytest

from bot.room import BuiltinRoomConnector, RoomSettings
from bot.room.simulated import SimulatedParticipant, start_students
from tests.room.conftest import RoomServer, serve_rooms

JOIN = json.dumps({"type": "join", "name": "Mallory"})


def offer(sdp: str) -> str:
    return json.dumps({"type": "offer", "sdp": sdp})


def sdp_with(media: str) -> str:
    head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    return head + media


VIDEO_WITHOUT_ICE = (
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
)

CASES: dict[str, tuple[list[str | bytes], int, str]] = {
    "malformed JSON": (['{"type": "join", '], 4400, "malformed JSON"),
    "not an object": (["[1, 2, 3]"], 4400, "expected a JSON object"),
    "unknown type first": (['{"type": "dance"}'], 4400, "unknown message type 'dance'"),
    "unknown type later": ([JOIN, '{"type": "dance"}'], 4400, "unknown message type"),
    "no type": (['{"name": "x"}'], 4400, "unknown message type"),
    "name not a string": (['{"type": "join", "name": 42}'], 4400, "join.name: expected a string"),
    "unknown field": (
        ['{"type": "join", "name": "x", "admin": true}'],
        4400,
        "unknown field 'admin'",
    ),
    "chat before join": (['{"type": "chat", "text": "hi"}'], 4400, "expected join first"),
    "second join": ([JOIN, JOIN], 4400, "already joined"),
    "chat too long": ([JOIN, json.dumps({"type": "chat", "text": "x" * 4001})], 4400, "over 4000"),
    "camera not a bool": (
        [JOIN, '{"type": "camera", "on": "yes"}'],
        4400,
        "expected true or false",
    ),
    "SDP not SDP": ([JOIN, offer("hello")], 4400, "not a session description"),
    "SDP garbage lines": ([JOIN, offer("v=0\r\nm=video x\r\n\x01\x02")], 4400, "offer"),
    "SDP with audio": (
        [JOIN, offer(sdp_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n"))],
        4400,
        "only video",
    ),
    "SDP too many tiles": (
        [
            JOIN,
            offer(
                sdp_with(
                    "".join(
                        f"m=video 9 RTP/AVP 96\r\na=mid:{i}\r\na=recvonly\r\n" for i in range(9)
                    )
                )
            ),
        ],
        4400,
        "at most 1 sendonly and 4 recvonly",
    ),
    "SDP without ICE": ([JOIN, offer(sdp_with(VIDEO_WITHOUT_ICE))], 4400, "offer: not accepted"),
    "NUL in SDP": ([JOIN, offer("v=0\r\nm=video 9\r\n\x00")], 4400, "NUL"),
    "binary frame": ([b"\x00\x01binary"], 1003, "binary frames are not accepted"),
    "oversize message": (
        ['{"type": "join", "name": "' + "x" * 70_000 + '"}'],
        1009,
        "message over 65536 bytes",
    ),
    "wrong teacher token": (
        [json.dumps({"type": "join", "name": "x", "teacher": "guess"})],
        4403,
        "wrong teacher token",
    ),
    "teacher's name": (
        [json.dumps({"type": "join", "name": "  ms   TANAKA "})],
        4409,
        "is the teacher's",
    ),
    "chat flood": (
        [JOIN, *(json.dumps({"type": "chat", "text": f"spam {i}"}) for i in range(40))],
        4429,
        "chat flood",
    ),
}


async def offend(
    url: str, frames: list[str | bytes], timeout: float = 10.0
) -> tuple[int | None, str]:
    """Send ``frames`` (as fast as possible), then wait for the server's close: (code, reason)."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, max_msg_size=0) as socket,
    ):
        for frame in frames:
            if socket.closed:
                break
            try:
                if isinstance(frame, bytes):
                    await socket.send_bytes(frame)
                else:
                    await socket.send_str(frame)
            except ConnectionError:
                break
        async with asyncio.timeout(timeout):
            while True:
                message = await socket.receive()
                if message.type == aiohttp.WSMsgType.CLOSE:
                    return socket.close_code, str(message.extra or "")
                if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return socket.close_code, ""


async def try_join(url: str) -> tuple[int | None, str]:
    """Join and leave at once: ``(0, "welcome")`` when admitted, else the close code and reason."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
        await socket.send_str(JOIN)
        async with asyncio.timeout(10):
            message = await socket.receive()
        if message.type == aiohttp.WSMsgType.TEXT and json.loads(message.data)["type"] == "welcome":
            return 0, "welcome"
        return socket.close_code, str(message.extra or "")


async def still_served(participant: SimulatedParticipant, text: str) -> None:
    """The participant is connected and its chat still goes round."""
    assert participant.close_code is None, participant.close_reason
    await participant.say(text)
    await participant.wait_for(lambda: any(m["text"] == text for m in participant.chat), timeout=5)


def socket_url(server: RoomServer, room: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/rooms/{room}/ws"


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_input_closes_only_the_offending_socket(
    room_server: RoomServer, case: str
) -> None:
    frames, code, reason = CASES[case]
    room_server.registry.create("class", teacher_name="Ms Tanaka")
    bystander = SimulatedParticipant(room_server.base_url, "class", "Aiko")
    await bystander.connect()
    await bystander.wait_for(lambda: bystander.id is not None, timeout=5)
    try:
        closed_with = await offend(socket_url(room_server, "class"), frames)
        assert closed_with[0] == code, closed_with
        assert reason in closed_with[1]
        await still_served(bystander, f"still here after {case}")
        await bystander.wait_for(
            lambda: [p["name"] for p in bystander.participants] == ["Aiko"], timeout=5
        )
    finally:
        await bystander.stop()


async def test_unknown_room_and_silent_socket(room_settings: RoomSettings) -> None:
    server = await serve_rooms(replace(room_settings, join_timeout_s=0.3))
    try:
        server.registry.create("class")
        assert await offend(socket_url(server, "nowhere"), []) == (4404, "no such room")
        assert await offend(socket_url(server, "class"), []) == (
            4408,
            "no join within the time allowed",
        )
    finally:
        await server.runner.cleanup()


async def test_a_flood_of_joins_is_refused_and_the_class_goes_on(
    room_settings: RoomSettings,
) -> None:
    server = await serve_rooms(
        replace(room_settings, join_burst=4, joins_per_s=0.5, max_participants=12)
    )
    room = server.registry.create("class")
    bot = BuiltinRoomConnector(server.registry, "class")
    await bot.join()
    students = await start_students(server.base_url, "class", ["Aiko", "Ben"], receive_tiles=True)
    try:
        floods = await asyncio.gather(*(try_join(socket_url(server, "class")) for _ in range(30)))
        # The burst of 4 had 2 joins left after the students (plus what refilled meanwhile at
        # 0.5/s); every other socket was refused at once, with a reason.
        refused = [f for f in floods if f == (4429, "too many joins; try again in a few seconds")]
        assert 30 - len(refused) <= 3 and {f for f in floods if f not in refused} <= {
            (0, "welcome")
        }, floods
        assert len(room.members()) == 3  # the bot and the two students
        await still_served(students[0], "the class goes on")
        # Media keeps flowing: tiles and the bot's frame sources get new frames.
        before = students[1].frames_from("Aiko")
        await students[1].wait_for(lambda: students[1].frames_from("Aiko") > before + 5, timeout=10)
        track = room.subscribe_video(students[0].id or "")
        assert track is not None
        frame = await asyncio.wait_for(track.recv(), 5)
        track.stop()
        assert isinstance(frame, av.VideoFrame) and (frame.width, frame.height) == (640, 360)
    finally:
        for student in students:
            await student.stop()
        await bot.leave()
        await server.runner.cleanup()


async def test_room_full(room_settings: RoomSettings) -> None:
    server = await serve_rooms(replace(room_settings, max_participants=1))
    server.registry.create("class")
    first = SimulatedParticipant(server.base_url, "class", "Aiko")
    try:
        await first.connect()
        await first.wait_for(lambda: first.id is not None, timeout=5)
        assert await offend(socket_url(server, "class"), [JOIN]) == (4503, "room full (1 people)")
        await still_served(first, "hello")
    finally:
        await first.stop()
        await server.runner.cleanup()
