"""Webhook delivery figures, from the real bot runtime (without its model process) to a local
receiver: ``GET /api/bots/{id}`` shows each bot's ``webhook`` {delivered, failed, dropped} and
``/metrics`` the totals over bots, which stay when the runtime forgets a finished bot; a
receiver that hangs past the drain time leaves the cut-off event failed and the queued one
dropped."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import bot.runtime
import bot.web.bot_lifecycle
from bot.web.keys import BOTS, METRICS
from bot.web.runtime_bots import RuntimeBotManager, RuntimeCollector
from tests.web.test_api_rooms import runtime_client
from tests.web.test_bot_connect_errors import _closed_port

__all__ = ["runtime_client"]  # the fixture: the real runtime behind the app, rooms served

pytestmark = pytest.mark.timeout(120)


@dataclass
class Receiver:
    """An operator's endpoint: answers ``answers`` in turn (then 204), or hangs until released."""

    url: str = ""
    types: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    hang: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()

    async def hook(request: web.Request) -> web.Response:
        got.types.append(request.headers["X-Classpulse-Event"])
        if got.hang:
            await got.released.wait()
        return web.Response(status=got.answers.pop(0) if got.answers else 204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    got.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    yield got
    got.released.set()
    await runner.cleanup()


def _with_collector(client: TestClient) -> RuntimeBotManager:
    """The collector ``runtime_bot_manager`` registers for a server (the fixture's app has none)."""
    manager = client.app[BOTS]
    assert isinstance(manager, RuntimeBotManager)
    client.app[METRICS].add_collector(RuntimeCollector(manager.runtime, manager.webhook_totals))
    return manager


async def _figures(client: TestClient) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    return {
        name: float(value)
        for name, value in re.findall(r"^(classpulse_webhook_\w+_total) (\S+)$", text, re.M)
    }


async def _bot_when(
    client: TestClient, bot_id: str, webhook: dict[str, int], timeout_s: float = 30.0
) -> dict[str, object]:
    async with asyncio.timeout(timeout_s):
        while True:
            shown = await (await client.get(f"/api/bots/{bot_id}")).json()
            if shown["webhook"] == webhook:
                return shown
            await asyncio.sleep(0.05)


async def test_each_bot_shows_its_deliveries_and_metrics_the_totals(
    runtime_client: TestClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = runtime_client
    manager = _with_collector(client)
    monkeypatch.setattr(bot.runtime, "MAX_FINISHED_BOTS", 0)  # forget a bot once it is done
    assert await _figures(client) == {
        "classpulse_webhook_events_delivered_total": 0.0,
        "classpulse_webhook_deliveries_failed_total": 0.0,
        "classpulse_webhook_events_dropped_total": 0.0,
    }
    receiver.answers = [400]  # bot.joining refused: final, not retried
    room = (await (await client.post("/api/rooms", json={"title": "Physics"})).json())["room"]
    invited = await client.post(
        "/api/bots",
        json={"meeting_url": f"builtin:{room}", "teacher": "Ms Sato", "webhook_url": receiver.url},
    )
    assert invited.status == 201, await invited.text()
    bot_id = (await invited.json())["id"]
    shown = await _bot_when(client, bot_id, {"delivered": 1, "failed": 1, "dropped": 0})
    assert receiver.types == ["bot.joining", "bot.in_meeting"]
    assert shown["state"] == "running"
    assert (await _figures(client))["classpulse_webhook_deliveries_failed_total"] == 1.0

    # A bot invited without a webhook has none to show.
    other = (await (await client.post("/api/rooms", json={"title": "Art"})).json())["room"]
    plain = await client.post(
        "/api/bots", json={"meeting_url": f"builtin:{other}", "teacher": "Mr Ito"}
    )
    assert (await plain.json())["webhook"] is None

    assert (await client.delete(f"/api/rooms/{room}")).status == 204
    await _bot_when(client, bot_id, {"delivered": 2, "failed": 1, "dropped": 0})
    lifecycle = manager._lifecycles[bot_id]
    await lifecycle.aclose()  # the delivery task is done: the runtime may forget the bot

    # The next invitation prunes the finished bot; its deliveries stay in the totals.
    unreachable = f"janus+ws://127.0.0.1:{_closed_port()}/janus?room=1234"
    second = await client.post(
        "/api/bots",
        json={"meeting_url": unreachable, "teacher": "Ms Sato", "webhook_url": receiver.url},
    )
    second_id = (await second.json())["id"]
    assert (await client.get(f"/api/bots/{bot_id}")).status == 404
    await _bot_when(client, second_id, {"delivered": 2, "failed": 0, "dropped": 0})
    assert receiver.types[-2:] == ["bot.joining", "bot.failed"]
    assert await _figures(client) == {
        "classpulse_webhook_events_delivered_total": 4.0,
        "classpulse_webhook_deliveries_failed_total": 1.0,
        "classpulse_webhook_events_dropped_total": 0.0,
    }


async def test_a_receiver_that_hangs_past_the_drain_time_counts_failed_and_dropped(
    runtime_client: TestClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = runtime_client
    _with_collector(client)
    monkeypatch.setattr(bot.web.bot_lifecycle, "DRAIN_TIMEOUT_S", 0.5)
    receiver.hang = True  # bot.joining is held; bot.failed waits behind it in the queue
    unreachable = f"janus+ws://127.0.0.1:{_closed_port()}/janus?room=1234"
    invited = await client.post(
        "/api/bots",
        json={"meeting_url": unreachable, "teacher": "Ms Sato", "webhook_url": receiver.url},
    )
    bot_id = (await invited.json())["id"]
    shown = await _bot_when(client, bot_id, {"delivered": 0, "failed": 1, "dropped": 1})
    assert shown["state"] == "failed" and receiver.types == ["bot.joining"]
    figures = await _figures(client)
    assert figures["classpulse_webhook_events_dropped_total"] == 1.0
    assert figures["classpulse_webhook_deliveries_failed_total"] == 1.0
