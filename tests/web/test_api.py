"""REST API against a real SQLite database filled through the storage writer."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.settings import Settings
from bot.web.app import create_app
from bot.web.bots import BotState
from bot.web.openapi import build_document
from engine.types import EngagementState
from storage import Storage
from tests.web.conftest import AUTH, HOSTILE_NAME, Seeded, SeededMeeting
from tests.web.fakes import FakeBotManager

JANUS_URL = "janus+ws://127.0.0.1:8188/?room=1234&pin=secret-pin"


def _seconds(meeting: SeededMeeting, name: str, state: EngagementState) -> float:
    return float(sum(1 for s in meeting.students[name] if s is state))


async def test_meetings_are_listed_oldest_first_with_filters(
    client: TestClient, seeded: Seeded
) -> None:
    response = await client.get("/api/meetings")
    assert response.status == 200
    meetings = (await response.json())["meetings"]
    assert [m["meeting_id"] for m in meetings] == [
        seeded.algebra.meeting_id,
        seeded.geometry.meeting_id,
    ]
    algebra = meetings[0]
    assert algebra["title"] == "Algebra" and algebra["teacher"] == "Ms Rivera"
    assert algebra["num_participants"] == len(seeded.algebra.students)
    assert algebra["started_at"].startswith("2026-03-02T09:00:00")

    async def ids(query: str) -> list[str]:
        answer = await client.get(f"/api/meetings?{query}")
        assert answer.status == 200, await answer.text()
        return [m["meeting_id"] for m in (await answer.json())["meetings"]]

    assert await ids("teacher=Mr%20Okafor") == [seeded.geometry.meeting_id]
    assert await ids("room=1234") == [seeded.algebra.meeting_id]
    assert await ids("since=2026-03-05") == [seeded.geometry.meeting_id]
    assert await ids("until=2026-03-05T00:00:00Z") == [seeded.algebra.meeting_id]
    assert await ids(f"since={int(seeded.geometry.started_at)}") == [seeded.geometry.meeting_id]
    assert await ids("since=2026-03-01&until=2026-03-02T08:59") == []


async def test_meeting_summary_counts_seconds_per_state(client: TestClient, seeded: Seeded) -> None:
    meeting = seeded.algebra
    response = await client.get(f"/api/meetings/{meeting.meeting_id}")
    assert response.status == 200
    page = await response.json()
    assert page["live"] is False
    assert page["meeting"]["ended_at"].startswith("2026-03-02T09:02:00")
    students = {s["display_name"]: s for s in page["students"]}
    assert set(students) == set(meeting.students)
    for name in meeting.students:
        for state in EngagementState:
            assert students[name][f"seconds_{state.value}"] == _seconds(meeting, name, state)
    assert students["Ana"]["num_alerts"] == 1
    assert page["num_alerts"] == 2 and page["num_class_alerts"] == 1
    assert page["seconds_no_face"] == _seconds(meeting, "Ben", EngagementState.NO_FACE)


async def test_timeline_buckets_and_bucket_parameter(client: TestClient, seeded: Seeded) -> None:
    meeting = seeded.algebra
    response = await client.get(f"/api/meetings/{meeting.meeting_id}/timeline?bucket=30s")
    assert response.status == 200
    body = await response.json()
    assert body["bucket_s"] == 30
    buckets = body["buckets"]
    assert [b["start_s"] for b in buckets] == [0, 30, 60, 90]
    people = len(meeting.students)
    # 30..60 s: Ben has no face for 10 of the 30 seconds, Ana and the third student are interested.
    assert buckets[1]["share_no_face"] == 10 / (30 * people)
    assert buckets[1]["share_interested"] == 60 / (30 * people)
    # 60..90 s: Ana is confused.
    assert buckets[2]["share_confused"] == 30 / (30 * people)
    one_minute = await (
        await client.get(f"/api/meetings/{meeting.meeting_id}/timeline?bucket=1m")
    ).json()
    assert [b["start_s"] for b in one_minute["buckets"]] == [0, 60]
    default = await (await client.get(f"/api/meetings/{meeting.meeting_id}/timeline")).json()
    assert default["bucket_s"] == 10 and len(default["buckets"]) == 12


async def test_student_lanes_give_each_student_their_state_per_bucket(
    client: TestClient, seeded: Seeded
) -> None:
    meeting = seeded.algebra
    response = await client.get(f"/api/meetings/{meeting.meeting_id}/students?bucket=20s")
    assert response.status == 200
    lanes = {lane["display_name"]: lane for lane in (await response.json())["students"]}
    assert set(lanes) == set(meeting.students)
    for name, states in meeting.students.items():
        expected = []
        for start in range(0, len(states), 20):
            chunk = states[start : start + 20]
            counts = {s: chunk.count(s) for s in EngagementState}
            top = max(EngagementState, key=lambda s: (counts[s], -list(EngagementState).index(s)))
            expected.append((start, top.value, counts[top] / len(chunk)))
        got = [(b["start_s"], b["state"], b[f"share_{b['state']}"]) for b in lanes[name]["buckets"]]
        assert got == expected, name


async def test_alerts_and_student_history(client: TestClient, seeded: Seeded) -> None:
    alerts = (await (await client.get(f"/api/meetings/{seeded.algebra.meeting_id}/alerts")).json())[
        "alerts"
    ]
    assert [(a["kind"], a["display_name"]) for a in alerts] == [
        ("confused", "Ana"),
        ("class_confused", None),
    ]
    response = await client.get("/api/students/Ana/history")
    assert response.status == 200
    history = await response.json()
    assert [m["meeting"]["meeting_id"] for m in history["meetings"]] == [
        seeded.algebra.meeting_id,
        seeded.geometry.meeting_id,
    ]
    assert history["meetings"][1]["student"]["seconds_interested"] == 60
    since = await (await client.get("/api/students/Ana/history?since=2026-03-05")).json()
    assert len(since["meetings"]) == 1
    # A display name with characters that need escaping in a path is found too.
    quoted = "/api/students/" + "".join(f"%{b:02X}" for b in HOSTILE_NAME.encode()) + "/history"
    hostile = await client.get(quoted)
    assert hostile.status == 200
    assert (await hostile.json())["meetings"][0]["student"]["display_name"] == HOSTILE_NAME


async def test_csv_export_of_each_view(client: TestClient, seeded: Seeded) -> None:
    meeting = seeded.algebra
    response = await client.get(f"/api/meetings/{meeting.meeting_id}?format=csv")
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert sorted(r["students.display_name"] for r in rows) == sorted(meeting.students)
    assert {r["meeting.meeting_id"] for r in rows} == {meeting.meeting_id}
    timeline = list(
        csv.DictReader(
            io.StringIO(
                await (
                    await client.get(
                        f"/api/meetings/{meeting.meeting_id}/timeline?bucket=1m&format=csv"
                    )
                ).text()
            )
        )
    )
    assert [float(r["start_s"]) for r in timeline] == [0.0, 60.0]
    listed = list(
        csv.DictReader(io.StringIO(await (await client.get("/api/meetings?format=csv")).text()))
    )
    assert [r["meeting_id"] for r in listed] == [
        seeded.algebra.meeting_id,
        seeded.geometry.meeting_id,
    ]
    empty = await client.get("/api/meetings?format=csv&since=2030-01-01")
    assert empty.status == 200 and (await empty.text()) == ""


async def test_unknown_ids_are_404_with_a_json_body(client: TestClient, seeded: Seeded) -> None:
    for path in (
        "/api/meetings/nope",
        "/api/meetings/nope/timeline",
        "/api/meetings/nope/students",
        "/api/meetings/nope/alerts",
        "/api/meetings/nope/live",
        "/api/students/Nobody/history",
        "/api/bots/nope",
        "/api/model/files/nope.png",
        "/api/no-such-route",
    ):
        response = await client.get(path)
        assert response.status == 404, path
        body = await response.json()
        assert body["error"] == "not_found" and body["status"] == 404
        assert "Received" in body["message"], body
    deleted = await client.delete("/api/bots/nope")
    assert deleted.status == 404


async def test_bad_input_is_400_saying_what_was_wrong(client: TestClient, seeded: Seeded) -> None:
    meeting_id = seeded.algebra.meeting_id
    cases = {
        f"/api/meetings/{meeting_id}/timeline?bucket=0s": "bucket",
        f"/api/meetings/{meeting_id}/timeline?bucket=ten": "bucket",
        f"/api/meetings/{meeting_id}/timeline?bucket=3d": "bucket",
        f"/api/meetings/{meeting_id}?format=xml": "format",
        "/api/meetings?since=yesterday": "since",
        "/api/meetings?until=2026-13-01": "until",
        "/api/meetings?teacher=": "teacher",
        "/api/meetings?colour=blue": "colour",
        "/api/meetings?room=1&room=2": "room",
        "/api/students/Ana/history?since=2026-02-30": "since",
    }
    for path, word in cases.items():
        response = await client.get(path)
        assert response.status == 400, path
        body = await response.json()
        assert body["error"] == "bad_request"
        assert word in body["message"] and "Received" in body["message"], (path, body)


async def test_bots_are_started_listed_and_stopped(
    client: TestClient, bots: FakeBotManager
) -> None:
    response = await client.post(
        "/api/bots",
        json={"meeting_url": JANUS_URL, "teacher": "Ms Rivera", "options": {"title": "Algebra"}},
    )
    assert response.status == 201, await response.text()
    bot = await response.json()
    assert bot["state"] == "running" and bot["teacher"] == "Ms Rivera"
    assert "secret-pin" not in json.dumps(bot), "the meeting PIN must not be echoed"
    # Every field but webhook_secret, which only an invitation with a webhook_url answers.
    assert set(bot) == set(build_document()["components"]["schemas"]["Bot"]["required"])
    assert response.headers["Location"] == f"/api/bots/{bot['id']}"
    listed = (await (await client.get("/api/bots")).json())["bots"]
    assert [b["id"] for b in listed] == [bot["id"]]
    assert (await (await client.get(f"/api/bots/{bot['id']}")).json())["meeting_id"] == bot[
        "meeting_id"
    ]
    assert bots.writer.flush(timeout_s=10)
    page = await (await client.get(f"/api/meetings/{bot['meeting_id']}")).json()
    assert page["live"] is True and page["meeting"]["title"] == "Algebra"

    stopped = await client.delete(f"/api/bots/{bot['id']}")
    assert stopped.status == 200
    assert (await stopped.json())["state"] == "ended"
    assert bots.writer.flush(timeout_s=10)
    page = await (await client.get(f"/api/meetings/{bot['meeting_id']}")).json()
    assert page["live"] is False and page["meeting"]["ended_at"] is not None


async def test_starting_a_bot_refuses_bad_bodies_and_urls(
    client: TestClient, bots: FakeBotManager
) -> None:
    cases = [
        ({"meeting_url": "https://zoom.us/j/123", "teacher": "T"}, "janus+ws://"),
        ({"meeting_url": "janus+ws://127.0.0.1:8188/", "teacher": "T"}, "room="),
        ({"meeting_url": "janus+ws://127.0.0.1:8188/?room=1&pni=2", "teacher": "T"}, "pni"),
        ({"meeting_url": JANUS_URL}, "teacher"),
        ({"meeting_url": JANUS_URL, "teacher": "  "}, "teacher"),
        ({"meeting_url": JANUS_URL, "teacher": "T", "options": []}, "options"),
        ({"meeting_url": JANUS_URL, "teacher": "T", "options": {"fps": 99}}, "fps"),
        ({"meeting_url": JANUS_URL, "teacher": "T", "colour": "blue"}, "colour"),
        (["not", "an", "object"], "JSON object"),
    ]
    for body, word in cases:
        response = await client.post("/api/bots", json=body)
        assert response.status == 400, body
        answer = await response.json()
        assert word in answer["message"], (body, answer)
    broken = await client.post(
        "/api/bots", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status == 400 and "JSON" in (await broken.json())["message"]
    huge = await client.post(
        "/api/bots", data=b"x" * (200 * 1024), headers={"Content-Type": "application/json"}
    )
    assert huge.status == 413 and (await huge.json())["error"] == "payload_too_large"
    assert bots.list() == []


async def test_live_feed_streams_what_the_bot_publishes(
    client: TestClient, bots: FakeBotManager
) -> None:
    started = await (
        await client.post("/api/bots", json={"meeting_url": JANUS_URL, "teacher": "T"})
    ).json()
    meeting_id = started["meeting_id"]
    response = await client.get(f"/api/meetings/{meeting_id}/live")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")

    async def next_event() -> tuple[str, dict]:
        name, data = "", None
        while data is None:
            raw = await asyncio.wait_for(response.content.readline(), 5)
            assert raw, "the event stream ended early"
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
        return name, data

    name, bot = await next_event()
    assert name == "bot" and bot["state"] == "running" and bot["meeting_id"] == meeting_id
    t = time.time()
    bots.push_sample(meeting_id, "Zoe", EngagementState.CONFUSED, t)
    bots.push_alert(meeting_id, t, "confused", "Zoe looks confused", "Zoe")
    events = [await next_event() for _ in range(4)]
    assert [name for name, _ in events] == ["joined", "state", "sample", "alert"]
    assert events[2][1]["student"] == "Zoe" and events[2][1]["state"] == "confused"
    assert events[3][1]["text"] == "Zoe looks confused"
    await client.delete(f"/api/bots/{started['id']}")
    rest = [await next_event() for _ in range(2)]
    assert [name for name, _ in rest] == ["ended", "end"]
    assert (await response.content.read()).strip() == b""
    assert bots.writer.flush(timeout_s=10)
    ended = await client.get(f"/api/meetings/{meeting_id}/live")
    assert ended.status == 409 and "no" in (await ended.json())["message"]


async def test_a_history_only_server_refuses_bots_with_503(
    settings: Settings, storage: Storage
) -> None:
    app = create_app(settings.replace(run_bots=False), storage=storage)
    async with TestClient(TestServer(app), headers=AUTH) as client:
        response = await client.post("/api/bots", json={"meeting_url": JANUS_URL, "teacher": "T"})
        assert response.status == 503
        assert "--history-only" in (await response.json())["message"]
        assert (await (await client.get("/api/bots")).json()) == {"bots": []}


async def test_live_feed_keeps_alive_and_ends_when_the_bot_is_gone(
    client: TestClient, bots: FakeBotManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.web import api

    monkeypatch.setattr(api, "KEEPALIVE_S", 0.2)
    started = await (
        await client.post("/api/bots", json={"meeting_url": JANUS_URL, "teacher": "T"})
    ).json()
    response = await client.get(f"/api/meetings/{started['meeting_id']}/live")
    lines = [await asyncio.wait_for(response.content.readline(), 5) for _ in range(3)]
    assert lines[0] == b"event: bot\n"
    assert await asyncio.wait_for(response.content.readline(), 5) == b": keepalive\n"
    # The bot crashes without publishing "ended": the stream notices at the next keep-alive.
    bots._bots[started["id"]] = replace(bots._bots[started["id"]], state=BotState.FAILED)
    rest = await asyncio.wait_for(response.content.read(), 5)
    assert rest.decode().split("event: ")[-1].startswith("end\n")
