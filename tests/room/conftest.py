"""A room app served on 127.0.0.1 for the tests of the built-in room."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from bot.room import RoomRegistry, RoomSettings, setup_room


@dataclass
class RoomServer:
    base_url: str
    registry: RoomRegistry
    runner: web.AppRunner


async def serve_rooms(settings: RoomSettings) -> RoomServer:
    app = web.Application()
    registry = setup_room(app, settings)
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return RoomServer(f"http://127.0.0.1:{port}", registry, runner)


@pytest.fixture
def room_settings() -> RoomSettings:
    return RoomSettings.for_host("127.0.0.1")


@pytest.fixture
async def room_server(room_settings: RoomSettings) -> AsyncIterator[RoomServer]:
    server = await serve_rooms(room_settings)
    try:
        yield server
    finally:
        await server.runner.cleanup()
