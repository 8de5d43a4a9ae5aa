"""The built-in room's trust rules: the teacher always gets in (full room, join flood), the teacher
is the room's word (not a name), and a socket from another site's page is refused."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import aiohttp

from bot.room import BuiltinRoomConnector, RoomSettings
from bot.room.simulated import SimulatedParticipant
from tests.room.conftest import serve_rooms
from tests.room.test_signalling import JOIN, offend, socket_url, try_join


async def join_as_teacher(url: str, token: str, bot: BuiltinRoomConnector) -> str:
    """Joins with the teacher link; returns the welcome's role once the bot saw a teacher."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
        await socket.send_str(json.dumps({"type": "join", "name": "Ms T", "teacher": token}))
        async with asyncio.timeout(10):
            message = await socket.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, (socket.close_code, message.extra)
            while not bot.teachers():
                await asyncio.sleep(0.05)
        return str(json.loads(message.data)["role"])


async def test_the_teacher_gets_into_a_full_and_flooded_room(room_settings: RoomSettings) -> None:
    server = await serve_rooms(
        replace(room_settings, max_participants=1, join_burst=2, joins_per_s=0.01)
    )
    room = server.registry.create("class")
    bot = BuiltinRoomConnector(server.registry, "class")
    await bot.join()
    first = SimulatedParticipant(server.base_url, "class", "Aiko")
    url = socket_url(server, "class")
    try:
        await first.connect()
        await first.wait_for(lambda: first.id is not None, timeout=5)
        assert await try_join(url) == (4503, "room full (1 people)")
        for _ in range(3):  # spends the join budget
            await try_join(url)
        # The room vouches for its teacher: the bot sees the role (``is_host``), not a name.
        assert await join_as_teacher(url, room.teacher_token, bot) == "teacher"
        assert not [p for p in bot.participants() if p.is_host and p.display_name == "Aiko"]
    finally:
        await first.stop()
        await bot.leave()
        await server.runner.cleanup()


async def test_a_socket_from_another_sites_page_is_refused(room_settings: RoomSettings) -> None:
    server = await serve_rooms(room_settings)
    server.registry.create("class")
    url = socket_url(server, "class")
    try:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url, origin="http://evil.example"):
                    raise AssertionError("the socket was accepted")
            except aiohttp.WSServerHandshakeError as error:
                assert error.status == 403
            own = server.base_url
            async with session.ws_connect(url, origin=own) as socket:
                await socket.send_str(JOIN)
                message = await asyncio.wait_for(socket.receive(), 10)
                assert json.loads(message.data)["type"] == "welcome"
        code, reason = await offend(url, [JOIN, '{"type": "dance"}'])
        assert code == 4400 and reason.startswith("unknown message type 'dance'")
    finally:
        await server.runner.cleanup()
