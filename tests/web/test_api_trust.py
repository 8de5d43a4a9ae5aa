"""The API's rules against careless and hostile callers: options checked by field, one bot per
meeting, a cap on bots, the teacher code, names as stored, Host checks (DNS rebinding)."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.live import LiveFeed
from bot.settings import Settings
from bot.teacher import MIN_CODE_CHARS
from bot.web.app import create_app
from engine.types import EngagementState
from storage import MeetingOpened, ParticipantJoined, Sample, Storage, Writer, new_meeting_id
from tests.web.conftest import AUTH
from tests.web.fakes import FakeBotManager
from tests.web.test_api import JANUS_URL


def room(number: int) -> str:
    return JANUS_URL.replace("room=1234", f"room={number}")


@pytest.fixture
async def strict_client(
    settings: Settings, storage: Storage, bots: FakeBotManager, feed: LiveFeed
) -> AsyncIterator[TestClient]:
    """A server allowing two bots, on one meeting host."""
    strict = settings.replace(max_bots=2, allowed_meeting_hosts=("127.0.0.1",))
    app = create_app(strict, storage=storage, bots=bots, feed=feed)
    async with TestClient(TestServer(app, host="127.0.0.1"), headers=AUTH) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"analysis_fps": "abc"}, "options.analysis_fps"),
        ({"analysis_fps": 0}, "options.analysis_fps"),
        ({"alert_after_s": -5}, "options.alert_after_s"),
        ({"alert_cooldown_s": 1e308}, "options.alert_cooldown_s"),
        ({"alert_bored": "yes"}, "options.alert_bored"),
        ({"class_share": 0}, "options.class_share"),
        ({"empty_grace_s": None}, "options.empty_grace_s"),
        ({"bot_name": "x" * 100}, "options.bot_name"),
        ({"title": ["Algebra"]}, "options.title"),
        ({"fps": 5}, "options.fps"),
    ],
)
async def test_bad_options_are_400_naming_the_field(
    client: TestClient, bots: FakeBotManager, options: dict[str, object], field: str
) -> None:
    response = await client.post(
        "/api/bots", json={"meeting_url": JANUS_URL, "teacher": "T", "options": options}
    )
    answer = await response.json()
    assert response.status == 400 and answer["field"] == field, answer
    assert answer["message"].startswith("Expected ") and "Received: " in answer["message"]
    assert bots.list() == []


async def test_teacher_code_is_returned_made_or_checked(client: TestClient) -> None:
    made = await (
        await client.post("/api/bots", json={"meeting_url": room(1), "teacher": "T"})
    ).json()
    assert len(made["teacher_code"]) >= MIN_CODE_CHARS
    given = await client.post(
        "/api/bots", json={"meeting_url": room(2), "teacher": "T", "teacher_code": "blue-horse-42"}
    )
    assert (await given.json())["teacher_code"] == "blue-horse-42"
    shown = await (await client.get(f"/api/bots/{made['id']}")).json()
    assert shown["teacher_code"] == made["teacher_code"]
    for code in ("short", 12345678, "--------------"):
        response = await client.post(
            "/api/bots", json={"meeting_url": room(3), "teacher": "T", "teacher_code": code}
        )
        assert response.status == 400 and (await response.json())["field"] == "teacher_code"


async def test_deeply_nested_json_is_400(client: TestClient) -> None:
    for depth in (20, 20_000):
        body = '{"meeting_url": "x", "teacher": "T", "options": ' + "[" * depth + "]" * depth + "}"
        response = await client.post(
            "/api/bots", data=body.encode(), headers={"Content-Type": "application/json"}
        )
        assert response.status == 400, depth
        assert "nested" in (await response.json())["message"]


async def test_one_bot_per_meeting_and_a_cap_on_bots(
    strict_client: TestClient, bots: FakeBotManager
) -> None:
    client = strict_client
    first = await (
        await client.post("/api/bots", json={"meeting_url": room(1), "teacher": "T"})
    ).json()
    # The same meeting, its secrets written differently: 409 naming the bot already there.
    again = await client.post(
        "/api/bots", json={"meeting_url": room(1).replace("secret-pin", "other"), "teacher": "U"}
    )
    answer = await again.json()
    assert again.status == 409 and answer["bot_id"] == first["id"], answer
    assert (await client.post("/api/bots", json={"meeting_url": room(2), "teacher": "T"})).ok
    full = await client.post("/api/bots", json={"meeting_url": room(3), "teacher": "T"})
    assert full.status == 503 and "2 bots" in (await full.json())["message"]
    # A bot that left frees its meeting and its place.
    assert (await client.delete(f"/api/bots/{first['id']}")).ok
    assert (await client.post("/api/bots", json={"meeting_url": room(1), "teacher": "T"})).ok
    assert len([info for info in bots.list() if info.state.active]) == 2


async def test_meeting_hosts_can_be_limited(strict_client: TestClient) -> None:
    elsewhere = "janus+ws://janus.example.org:8188/?room=1"
    response = await strict_client.post(
        "/api/bots", json={"meeting_url": elsewhere, "teacher": "T"}
    )
    answer = await response.json()
    assert response.status == 400 and answer["field"] == "meeting_url"
    assert "janus.example.org" in answer["message"]


async def test_names_come_back_exactly_as_stored_and_lookups_are_nfc(
    client: TestClient, writer: Writer
) -> None:
    meeting_id, t = new_meeting_id(), time.time() - 60
    writer.submit(MeetingOpened(meeting_id, "janus", "1", t, teacher="Ms Sato"))
    for name in ("=SUM(A1)", "Zoë"):
        writer.submit(ParticipantJoined(meeting_id, name, t))
        writer.submit(Sample(meeting_id, name, t + 1, EngagementState.INTERESTED, True, 1, 0, 0))
    assert writer.flush(timeout_s=10)
    page = await (await client.get(f"/api/meetings/{meeting_id}")).json()
    assert {s["display_name"] for s in page["students"]} == {"=SUM(A1)", "Zoë"}
    csv = await (await client.get(f"/api/meetings/{meeting_id}?format=csv")).text()
    assert "'=SUM(A1)" in csv  # formula escaping is for spreadsheets only
    decomposed = unicodedata.normalize("NFD", "Zoë")
    history = await client.get(f"/api/students/{decomposed}/history")
    assert history.status == 200 and (await history.json())["display_name"] == "Zoë"


async def test_requests_naming_another_host_are_refused(client: TestClient) -> None:
    for host, status in [
        ("evil.example", 421),
        ("evil.example:8080", 421),
        ("localhost:8080", 200),
        ("127.0.0.1", 200),
        ("[::1]:8080", 200),
        ("192.0.2.7:8080", 200),  # an address cannot be rebound
    ]:
        response = await client.get("/api/meetings", headers={"Host": host})
        assert response.status == status, host
    page = await client.get("/", headers={"Host": "evil.example"})
    assert page.status == 421


def test_settings_read_the_limits_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "CLASSPULSE_DATA_DIR": str(tmp_path),
            "CLASSPULSE_MAX_BOTS": "3",
            "CLASSPULSE_ALLOWED_MEETING_HOSTS": "Janus.School.example, janus2.school.example",
            "CLASSPULSE_ALLOWED_HOSTS": "classpulse.school.example",
        }
    )
    assert settings.max_bots == 3
    assert settings.allowed_meeting_hosts == ("janus.school.example", "janus2.school.example")
    assert settings.host_names() == frozenset({"classpulse.school.example"})
    with pytest.raises(ValueError, match="max_bots"):
        settings.replace(max_bots=0)
