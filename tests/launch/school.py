"""The lesson's cast and helpers for the Ray launcher's e2e test: the classes (Janus, students,
teacher), the school (cluster, server, PostgreSQL, a webhook receiver), and what the chapters
wait for and read (live stream, chat lines, stored samples)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from bot.session.teacher import CLAIMED
from storage import Storage
from storage import models as tables
from tests.bot.harness.janus_server import JanusServer
from tests.bot.harness.participants import JanusParticipant
from tests.launch.ray_cluster import RayCluster, ServerProcess
from tests.web.test_webhooks import Receiver


@dataclass
class Class:
    name: str
    janus: JanusServer
    teacher: JanusParticipant
    students: dict[str, JanusParticipant]
    bot: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    stream: asyncio.Task[None] | None = None

    @property
    def confused(self) -> str:
        return next(iter(self.students))


@dataclass
class School:
    cluster: RayCluster
    server: ServerProcess
    storage: Storage
    http: aiohttp.ClientSession
    classes: dict[str, Class]
    #: Class A's bot is invited with this webhook receiver.
    receiver: Receiver
    #: Starts another ``classpulse serve`` on the same cluster and database (a restart).
    new_server: Callable[[str], ServerProcess]
    #: Class A's webhook secret, from the 201.
    webhook_secret: str = ""

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, self.server.base + path, json=body, headers=self.server.headers
        ) as answer:
            return answer.status, await answer.json(content_type=None)

    async def bot(self, room: Class) -> dict[str, Any]:
        status, body = await self.api("GET", f"/api/bots/{room.bot['id']}")
        assert status == 200, body
        room.bot = body
        return body

    async def metrics(self) -> str:
        async with self.http.get(self.server.base + "/metrics") as answer:
            return await answer.text()


async def follow_live(school: School, room: Class, meeting_id: str) -> None:
    """The server's live stream of the meeting (server-sent events) into ``room.events``."""
    path = f"/api/meetings/{meeting_id}/live"
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with school.http.get(
                school.server.base + path, headers=school.server.headers
            ) as answer:
                async for raw in answer.content:
                    line = raw.decode().strip()
                    if line.startswith("data: "):
                        room.events.append(json.loads(line[6:]))
        await asyncio.sleep(0.5)


async def until(check: Callable[..., Any], timeout_s: float, what: str, *args: Any) -> Any:
    """``check(*args)`` (awaited when a coroutine) until it is truthy; its value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check(*args)
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def bot_username(member: JanusParticipant, text: str, since: int = 0) -> str | None:
    """The chat username that said ``text`` (the bot's, new with each incarnation)."""
    for line in member.record.lines[since:]:
        if line.text == text:
            return line.username
    return None


async def claim(room: Class, username: str, since: int) -> None:
    await room.teacher.say(f"!claim {room.bot['teacher_code']}", to=username)
    await until(
        lambda: any(
            line.whisper and line.text == CLAIMED for line in room.teacher.record.lines[since:]
        ),
        15,
        f"class {room.name}: the bot confirms the claim",
    )


def alerts(room: Class, since: int = 0) -> list[str]:
    return [line.text for line in room.teacher.record.lines[since:] if line.whisper]


def alerted(room: Class, wanted: str, since: int) -> bool:
    return any(text.startswith(wanted) for text in alerts(room, since))


def stored_samples(storage: Storage, meeting_id: str) -> dict[str, list[float]]:
    with storage.session() as session:
        rows = session.execute(
            select(tables.Participant.display_name, tables.Sample.t)
            .join(tables.Sample, tables.Sample.participant_id == tables.Participant.id)
            .where(tables.Participant.meeting_id == meeting_id)
            .order_by(tables.Sample.t)
        ).all()
    samples: dict[str, list[float]] = {}
    for name, t in rows:
        samples.setdefault(name, []).append(t)
    return samples


def samples_of(storage: Storage, meeting_id: str, names: set[str]) -> dict[str, list[float]]:
    samples = stored_samples(storage, meeting_id)
    return samples if samples.keys() == names else {}


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    """An operator's webhook endpoint on 127.0.0.1 (in the test's network namespace)."""
    got = Receiver()

    async def hook(request: web.Request) -> web.Response:
        got.deliveries.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    got.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    try:
        yield got
    finally:
        await runner.cleanup()
