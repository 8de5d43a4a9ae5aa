"""Signed webhooks of a bot's lifecycle, received by a local aiohttp server from the real bot
runtime (without its model process): the events in order, the signature over the raw body (a
forged or altered body fails), the stable codes of a refused meeting, retries that never make
the bot wait, and webhook URLs that are refused with a 400."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.outcomes import BotCode, end_outcome
from bot.room import ROOM_REGISTRY
from bot.web.keys import BOTS
from bot.web.webhooks import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    PublicResolver,
    WebhookSender,
    sign,
    verify,
)
from engine.backoff import Backoff
from tests.web.test_api_rooms import runtime_client
from tests.web.test_bot_connect_errors import _closed_port

__all__ = ["runtime_client"]  # the fixture: the real runtime behind the app, rooms served

pytestmark = pytest.mark.timeout(120)


@dataclass
class Receiver:
    """An operator's endpoint: keeps each delivery's headers and raw body."""

    url: str = ""
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    #: Statuses to answer, in turn; then 204.
    answers: list[int] = field(default_factory=list)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.deliveries]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]

    async def wait_for(self, kind: str, timeout_s: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                found = [e for e in self.events() if e["type"] == kind]
                if found:
                    return found[0]
                await asyncio.sleep(0.05)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()

    async def hook(request: web.Request) -> web.Response:
        got.deliveries.append((dict(request.headers), await request.read()))
        return web.Response(status=got.answers.pop(0) if got.answers else 204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    got.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    yield got
    await runner.cleanup()


def _verified(receiver: Receiver, secret: str) -> None:
    for headers, body in receiver.deliveries:
        assert verify(secret, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
        assert headers[EVENT_HEADER] == json.loads(body)["type"]


async def test_a_bot_in_a_room_reports_joining_in_meeting_alert_and_ended(
    runtime_client: TestClient, receiver: Receiver
) -> None:
    client = runtime_client
    opened = await client.post("/api/rooms", json={"title": "Physics"})
    room = (await opened.json())["room"]
    invited = await client.post(
        "/api/bots",
        json={"meeting_url": f"builtin:{room}", "teacher": "Ms Sato", "webhook_url": receiver.url},
    )
    assert invited.status == 201, await invited.text()
    bot = await invited.json()
    secret = bot.pop("webhook_secret")
    assert len(secret) >= 40 and bot["webhook_url"] == receiver.url
    shown = await (await client.get(f"/api/bots/{bot['id']}")).json()
    assert "webhook_secret" not in shown and shown["code"] is None
    await receiver.wait_for("bot.in_meeting")
    # An alert as the session publishes it on its live feed (no camera, no model here).
    client.app[BOTS].runtime.live.publish(
        bot["meeting_id"],
        {
            "type": "alert",
            "kind": "confused",
            "student": "Aiko",
            "text": "Aiko looks confused",
            "t": time.time(),
            "delivered": True,
        },
    )
    await receiver.wait_for("bot.alert")
    assert (await client.delete(f"/api/rooms/{room}")).status == 204
    ended = await receiver.wait_for("bot.ended")
    assert receiver.types() == ["bot.joining", "bot.in_meeting", "bot.alert", "bot.ended"]
    assert ended["code"] == "meeting_ended" and ended["message"].endswith(".")
    assert ended["bot_id"] == bot["id"] and ended["meeting_id"] == bot["meeting_id"]
    alert = receiver.events()[2]
    assert alert["code"] == "confused" and alert["data"]["student"] == "Aiko"
    _verified(receiver, secret)
    final = await (await client.get(f"/api/bots/{bot['id']}")).json()
    assert final["state"] == "ended" and final["code"] == "meeting_ended"


async def test_an_unreachable_janus_fails_with_its_code(
    runtime_client: TestClient, receiver: Receiver
) -> None:
    url = f"janus+ws://127.0.0.1:{_closed_port()}/janus?room=1234"
    invited = await runtime_client.post(
        "/api/bots", json={"meeting_url": url, "teacher": "Ms Sato", "webhook_url": receiver.url}
    )
    assert invited.status == 201, await invited.text()
    bot = await invited.json()
    failed = await receiver.wait_for("bot.failed")
    assert receiver.types() == ["bot.joining", "bot.failed"]
    assert failed["code"] == BotCode.MEETING_UNREACHABLE == "meeting_unreachable"
    assert "connection refused" in failed["message"] and "Error(" not in failed["message"]
    _verified(receiver, bot["webhook_secret"])
    shown = await (await runtime_client.get(f"/api/bots/{bot['id']}")).json()
    assert shown["state"] == "failed" and shown["code"] == "meeting_unreachable"
    assert shown["message"] == failed["message"]


async def test_a_room_closed_before_the_join_fails_as_room_not_found(
    runtime_client: TestClient, receiver: Receiver
) -> None:
    """The API refuses a room that is not open (400); a room closed between the check and the
    join is the runtime's to report: ``bot.failed`` with ``room_not_found``."""
    client = runtime_client
    refused = await client.post(
        "/api/bots", json={"meeting_url": "builtin:nowhere", "teacher": "Ms Sato"}
    )
    assert refused.status == 400
    registry = client.app[ROOM_REGISTRY]
    registry.create("gone")
    await registry.get("gone").close("closed by the test")
    from bot.web.bots import Webhook

    info = await client.app[BOTS].start(
        "builtin:gone", "Ms Sato", {}, webhook=Webhook(receiver.url, "s3cret-for-the-test")
    )
    failed = await receiver.wait_for("bot.failed")
    assert failed["code"] == "room_not_found" and failed["bot_id"] == info.bot_id
    assert receiver.types() == ["bot.joining", "bot.failed"]
    _verified(receiver, "s3cret-for-the-test")


async def _refused_webhook(runtime_client: TestClient, url: str) -> str:
    """Invite a bot with ``webhook_url=url``: a 400 naming the field, no bot; the message."""
    answer = await runtime_client.post(
        "/api/bots",
        json={"meeting_url": "janus+ws://127.0.0.1:1/?room=1", "teacher": "T", "webhook_url": url},
    )
    assert answer.status == 400
    body = await answer.json()
    assert body["field"] == "webhook_url"
    assert not (await (await runtime_client.get("/api/bots")).json())["bots"]
    return str(body["message"])


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/hook", "javascript:alert(1)", "/relative/hook", "http://", "http://a b/"],
)
async def test_webhook_urls_that_are_not_http_are_refused(
    runtime_client: TestClient, url: str
) -> None:
    message = await _refused_webhook(runtime_client, url)
    assert message.startswith("Expected webhook_url to be an http")
    assert "Received:" in message


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://[fd00:ec2::254]/",  # AWS's IPv6 one
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]:8080/hook",
        "http://0.0.0.0:8080/hook",
        "https://224.0.0.1/hook",
    ],
)
async def test_webhook_urls_to_metadata_or_link_local_addresses_are_refused(
    runtime_client: TestClient, url: str
) -> None:
    message = await _refused_webhook(runtime_client, url)
    assert "link-local, metadata" in message and "Received:" in message


async def test_a_host_name_resolving_to_the_metadata_service_is_never_connected() -> None:
    class Fake:
        def __init__(self, *addresses: str) -> None:
            self.addresses = addresses

        async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[Any]:
            return [{"hostname": host, "host": a, "port": port} for a in self.addresses]

    resolver = PublicResolver()
    resolver._resolver = Fake("169.254.169.254", "127.0.0.1")  # type: ignore[assignment]
    assert [r["host"] for r in await resolver.resolve("hooks.example", 80)] == ["127.0.0.1"]
    resolver._resolver = Fake("169.254.169.254")  # type: ignore[assignment]
    with pytest.raises(OSError, match=r"169\.254\.169\.254"):
        await resolver.resolve("rebound.example", 80)


def test_a_forged_or_altered_delivery_fails_verification() -> None:
    body = b'{"type":"bot.ended","code":"stopped"}'
    now = int(time.time())
    signature = sign("secret", now, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify("secret", body, str(now), signature)
    assert not verify("secret", body.replace(b"stopped", b"kicked"), str(now), signature)
    assert not verify("another", body, str(now), signature)
    assert not verify("secret", body, str(now + 1), signature)  # the time is signed too
    last = signature[-1]
    tampered = signature[:-1] + ("1" if last == "0" else "0")  # always a different last digit
    assert not verify("secret", body, str(now), tampered)
    old = now - 3600  # a replay of a genuine old delivery
    assert not verify("secret", body, str(old), sign("secret", old, body))
    assert not verify("secret", body, None, signature) and not verify("secret", body, "x", None)


async def test_delivery_retries_with_backoff_and_never_blocks(receiver: Receiver) -> None:
    receiver.answers = [503, 500]  # two failures, then accepted
    sender = WebhookSender(receiver.url, "k", backoff=Backoff(initial_s=0.05, max_s=0.1))
    started = time.perf_counter()
    for number in range(3):
        sender.send({"type": "bot.alert", "id": str(number)})
    assert time.perf_counter() - started < 0.01  # send() only queues
    await sender.aclose(drain_timeout_s=10)
    assert [json.loads(body)["id"] for _, body in receiver.deliveries] == ["0", "0", "0", "1", "2"]
    assert (sender.stats.delivered, sender.stats.failed, sender.stats.dropped) == (3, 0, 0)


async def test_a_full_queue_drops_the_oldest_but_keeps_the_final_event() -> None:
    sender = WebhookSender("http://127.0.0.1:9/hook", "k", max_queued=3, max_attempts=1)
    sender._task = asyncio.create_task(asyncio.sleep(0))  # no delivery task: watch the queue
    for number in range(3):
        sender.send({"type": "bot.alert", "id": str(number)})
    sender.send({"type": "bot.ended", "id": "end"})
    sender.send({"type": "bot.alert", "id": "late"})
    assert [event["id"] for event in sender._queue] == ["2", "end", "late"]
    assert sender.stats.dropped == 2


def test_end_codes_from_the_sessions_reasons() -> None:
    assert end_outcome("asked to leave").code is BotCode.STOPPED
    assert end_outcome("everyone left").code is BotCode.EVERYONE_LEFT
    assert end_outcome("meeting ended: kicked the room").code is BotCode.KICKED
    assert end_outcome("meeting ended: room destroyed").code is BotCode.MEETING_ENDED
    assert end_outcome("meeting ended").code is BotCode.MEETING_ENDED
