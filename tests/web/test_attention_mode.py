"""The attention mode end to end: options.mode and CLASSPULSE_MODE checked; a real bot runtime in
attention mode joins the built-in room, where a simulated aiortc student streams a face — no
inference process is started, samples have NULL scores and the landmark stage's attention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bot.room import ROOM_REGISTRY, builtin_connector_factory
from bot.room.faces import bundled_face_path
from bot.room.simulated import start_students
from bot.runtime import BotRuntime
from bot.session.settings import ATTENTION_NOTICE
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.runtime_bots import RuntimeBotManager
from storage import Storage
from tests.web.conftest import AUTH
from tests.web.fakes import FakeBotManager
from tests.web.test_api import JANUS_URL


@pytest.mark.parametrize("mode", ["emotion", "", 1, None, ["attention"]])
async def test_a_bad_mode_is_400_naming_the_expected_values(
    client: TestClient, bots: FakeBotManager, mode: object
) -> None:
    response = await client.post(
        "/api/bots",
        json={"meeting_url": JANUS_URL, "teacher": "T", "options": {"mode": mode}},
    )
    answer = await response.json()
    assert response.status == 400 and answer["field"] == "options.mode", answer
    assert answer["message"].startswith("Expected mode 'engagement' or 'attention'. Received: ")
    assert bots.list() == []


def test_the_server_default_comes_from_classpulse_mode(tmp_path: Path) -> None:
    base = {"CLASSPULSE_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).mode == "engagement"
    assert Settings.from_env({**base, "CLASSPULSE_MODE": "attention"}).mode == "attention"
    with pytest.raises(ValueError) as raised:
        Settings.from_env({**base, "CLASSPULSE_MODE": "emotions"})
    assert str(raised.value) == (
        "Expected CLASSPULSE_MODE 'engagement' or 'attention'. Received: 'emotions'"
    )


@pytest.fixture
async def attention_server(
    settings: Settings, storage: Storage, tmp_path: Path
) -> AsyncIterator[tuple[TestClient, BotRuntime]]:
    """The real bot runtime in attention mode (one process: no media workers) behind the API."""
    runtime = BotRuntime(storage, mode="attention", num_media_workers=1, num_detection_threads=1)
    app = create_app(settings, storage=storage, bots=RuntimeBotManager(runtime))
    runtime.connector_factories.append(builtin_connector_factory(app[ROOM_REGISTRY]))
    async with runtime, TestClient(TestServer(app, host="127.0.0.1"), headers=AUTH) as client:
        yield client, runtime


async def _wait(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_attention_bot_in_the_builtin_room_runs_no_emotion_model(
    attention_server: tuple[TestClient, BotRuntime], storage: Storage, tmp_path: Path
) -> None:
    client, runtime = attention_server
    portrait = bundled_face_path()
    if portrait is None:
        pytest.skip("matplotlib's sample portrait is not installed")
    room = await (await client.post("/api/rooms", json={"title": "Physics"})).json()
    invited = await client.post(
        "/api/bots", json={"meeting_url": f"builtin:{room['room']}", "teacher": "Ms Sato"}
    )
    assert invited.status == 201, await invited.text()
    bot_id = (await invited.json())["id"]
    handle = runtime.get(bot_id)
    assert handle is not None and handle.session.settings.mode == "attention"
    base_url = f"http://127.0.0.1:{client.port}"
    students = await start_students(base_url, room["room"], ["Ana"])
    try:
        meeting_id = handle.session.meeting_id

        async def attention_stored() -> bool:
            with storage.session() as session:
                found = session.execute(
                    text("SELECT count(*) FROM samples WHERE yaw IS NOT NULL")
                ).scalar_one()
            return bool(found >= 3)

        await _wait(attention_stored, "samples with the landmark stage's attention")
        notices = [m["text"] for m in students[0].chat]
        assert ATTENTION_NOTICE in notices
    finally:
        for student in students:
            await student.stop()
    assert (await client.delete(f"/api/bots/{bot_id}")).status in (200, 202, 204)
    await asyncio.wait_for(asyncio.shield(handle.task), 15)
    runtime.writer.flush(5)  # type: ignore[union-attr]

    # No inference process: the scoring hub was never started, its client never spawned one.
    assert runtime.scoring_started is False and runtime.scoring.client.pid is None
    with storage.session() as session:
        rows = session.execute(
            text(
                "SELECT state, face_present, p_interested, p_bored, p_confused, yaw, pitch, "
                "looking_away FROM samples"
            )
        ).all()
    assert rows and all(r.p_interested is None and r.p_bored is None for r in rows)
    assert all(r.p_confused is None for r in rows)
    assert {r.state for r in rows} <= {"present", "no_face"}
    read = [r for r in rows if r.yaw is not None]
    assert read and all(r.state == "present" and r.face_present for r in read)
    assert all(abs(r.yaw) < 25 for r in read)  # the portrait faces the camera
    lanes = storage.student_lanes(meeting_id, bucket_s=5)
    assert [lane.display_name for lane in lanes] == ["Ana"]
    assert any(b.share_present > 0 for b in lanes[0].buckets)
