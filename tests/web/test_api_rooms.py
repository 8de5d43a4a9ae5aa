"""Rooms through the API: open with a title, list, show, close (the bot leaves), bad input named by
field, the token required, and open rooms back with the same links after a restart."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.room import ROOM_REGISTRY, builtin_connector_factory
from bot.runtime import BotRuntime
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.runtime_bots import RuntimeBotManager
from storage import Storage
from tests.web.conftest import AUTH

KEYS = {"room", "title", "teacher_url", "student_url"}


async def _open(client: TestClient, title: str) -> dict[str, Any]:
    response = await client.post("/api/rooms", json={"title": title})
    assert response.status == 201, await response.text()
    body = await response.json()
    assert response.headers["Location"] == f"/api/rooms/{body['room']}"
    return dict(body)


async def test_open_list_show_and_close_a_room(client: TestClient) -> None:
    body = await _open(client, "  Math 7b  ")
    assert set(body) == KEYS and body["title"] == "Math 7b"
    name = body["room"]
    assert re.fullmatch(r"math-7b-[0-9a-f]{6}", name), name
    base = f"http://127.0.0.1:{client.port}"
    assert body["student_url"] == f"{base}/rooms/{name}"
    token = body["teacher_url"].removeprefix(f"{base}/rooms/{name}#teacher=")
    assert len(token) >= 24 and client.app[ROOM_REGISTRY].get(name).is_teacher_token(token)
    assert (await client.get(f"/rooms/{name}")).status == 200  # the page is served

    other = await _open(client, "Biologie – Zellen")
    assert (
        other["room"].startswith("biologie-zellen-") and other["teacher_url"] != body["teacher_url"]
    )
    listed = await (await client.get("/api/rooms")).json()
    assert listed == {"rooms": [body, other]}
    assert await (await client.get(f"/api/rooms/{name}")).json() == body

    assert (await client.delete(f"/api/rooms/{name}")).status == 204
    assert (await client.get(f"/api/rooms/{name}")).status == 404
    assert (await client.delete(f"/api/rooms/{name}")).status == 404
    assert (await client.get(f"/rooms/{name}")).status == 404
    assert client.app[ROOM_REGISTRY].get(name) is None
    assert (await (await client.get("/api/rooms")).json()) == {"rooms": [other]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 7}, "title"),
        ({"title": None}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "Math\n7b"}, "title"),
        ({"title": "Math\u202e7b"}, "title"),
        ({"title": "Math", "teacher_token": "mine"}, "teacher_token"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/rooms", json=body)
    answer = await response.json()
    assert response.status == 400 and answer["field"] == field, answer
    assert answer["message"].startswith("Expected") and "Received" in answer["message"]
    assert (await (await client.get("/api/rooms")).json()) == {"rooms": []}


async def test_rooms_need_the_token_like_every_route(client: TestClient) -> None:
    for method, path in [
        ("GET", "/api/rooms"),
        ("POST", "/api/rooms"),
        ("GET", "/api/rooms/x"),
        ("DELETE", "/api/rooms/x"),
    ]:
        response = await client.request(method, path, headers={"Authorization": "Bearer wrong"})
        assert response.status == 401, (method, path)


async def test_inviting_the_bot_into_a_room_that_is_not_open_is_a_400(client: TestClient) -> None:
    response = await client.post(
        "/api/bots", json={"meeting_url": "builtin:math7", "teacher": "Ms Sato"}
    )
    answer = await response.json()
    assert response.status == 400 and answer["field"] == "meeting_url", answer
    assert "GET /api/rooms" in answer["message"]


async def test_open_rooms_come_back_after_a_restart_with_the_same_links(
    settings: Settings, storage: Storage
) -> None:
    async def serve_once() -> AsyncGenerator[TestClient, None]:
        app = create_app(settings, storage=storage, bots=None)  # history-only below
        async with TestClient(TestServer(app, host="127.0.0.1"), headers=AUTH) as client:
            yield client

    settings = settings.replace(run_bots=False)
    first = serve_once()
    client = await anext(first)
    kept = await _open(client, "Kept")
    closed = await _open(client, "Closed")
    assert (await client.delete(f"/api/rooms/{closed['room']}")).status == 204
    await first.aclose()

    second = serve_once()
    client = await anext(second)
    rooms = (await (await client.get("/api/rooms")).json())["rooms"]
    assert [room["room"] for room in rooms] == [kept["room"]]
    port_free = {key: value.replace(f":{client.port}", "") for key, value in rooms[0].items()}
    assert port_free == {key: re.sub(r":\d+", "", value) for key, value in kept.items()}
    token = kept["teacher_url"].split("#teacher=")[1]
    assert client.app[ROOM_REGISTRY].get(kept["room"]).is_teacher_token(token)
    assert (await client.get(f"/rooms/{kept['room']}")).status == 200
    assert (await client.get(f"/rooms/{closed['room']}")).status == 404
    await second.aclose()


@pytest.fixture
async def runtime_client(settings: Settings, storage: Storage) -> AsyncIterator[TestClient]:
    """The real bot runtime, without its model process (no camera in the room: nothing scored)."""
    runtime = BotRuntime(storage)
    runtime.writer = storage.writer(max_delay_s=0.05)
    runtime._executor = ThreadPoolExecutor(1)
    app = create_app(settings, storage=storage, bots=RuntimeBotManager(runtime))
    runtime.connector_factories.append(builtin_connector_factory(app[ROOM_REGISTRY]))
    try:
        async with TestClient(TestServer(app, host="127.0.0.1"), headers=AUTH) as client:
            yield client
    finally:
        runtime._executor.shutdown()
        await asyncio.to_thread(runtime.writer.close)


async def _wait(check: Any, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_the_bot_joins_a_room_and_leaves_when_it_closes(runtime_client: TestClient) -> None:
    client = runtime_client
    room = await _open(client, "Physics")
    invited = await client.post(
        "/api/bots", json={"meeting_url": f"builtin:{room['room']}", "teacher": "Ms Sato"}
    )
    assert invited.status == 201, await invited.text()
    bot_id = (await invited.json())["id"]
    registry = client.app[ROOM_REGISTRY]

    async def bot_in_room() -> bool:
        members = registry.get(room["room"]).members()
        return any(member.role == "bot" for member in members)

    await _wait(bot_in_room, "the bot joined the room")
    assert (await client.delete(f"/api/rooms/{room['room']}")).status == 204

    async def bot_gone() -> bool:
        body = await (await client.get(f"/api/bots/{bot_id}")).json()
        return bool(body["state"] == "ended")

    await _wait(bot_gone, "the bot left the closed room")

    async def stored_with_the_room_title() -> bool:  # the writer commits in batches
        meetings = (await (await client.get("/api/meetings")).json())["meetings"]
        return [meeting["title"] for meeting in meetings] == ["Physics"]

    await _wait(stored_with_the_room_title, "the meeting stored under the room's title")
