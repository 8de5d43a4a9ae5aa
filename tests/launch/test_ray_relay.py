"""What the server relays of its Ray actors, with a fake cluster (``tests.launch.fake_ray``) and
the real manager, lifecycle, webhook sender and ``/metrics``: signed webhooks for a Ray bot
(its restart included) to a local aiohttp receiver, inference figures merged over actors and
incarnations, and a restarted server adopting the actors a crashed one left running.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from bot.launch.ray_manager import RayBotManager
from bot.launch.ray_metrics import RayCollector
from bot.launch.spec import ScoringFigures
from bot.live import LiveFeed
from bot.settings import Settings
from bot.web.bots import Webhook
from bot.web.metrics import Metrics
from bot.web.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.launch.fake_ray import FakeActor, FakeActorClass, FakeCluster
from tests.web.test_webhooks import Receiver, receiver

__all__ = ["receiver"]  # the fixture: a local aiohttp endpoint that keeps each delivery

pytestmark = pytest.mark.timeout(60)

JANUS = "janus+ws://127.0.0.2:8188/?room=1234&textroom=1234&pin=secret"
SECRET = "s" * 43


def _manager(tmp_path: Path, cluster: FakeCluster, database: str = "") -> RayBotManager:
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    if database:
        settings = settings.replace(database_url=database)
    return RayBotManager(settings, LiveFeed(), FakeActorClass(cluster), cluster)


async def _until(check: Any, what: str, timeout_s: float = 10.0) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (found := check()):
            await asyncio.sleep(0.02)
    assert found, what
    return found


def _alert(student: str) -> dict[str, Any]:
    text = f"{student} has looked confused for 60 s"
    return {"type": "alert", "kind": "confused", "student": student, "text": text, "t": 1.0}


async def test_a_ray_bot_sends_signed_webhooks_with_its_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    cluster = FakeCluster()
    manager = _manager(tmp_path, cluster)
    info = await manager.start(JANUS, "Ms Abe", {}, webhook=Webhook(receiver.url, SECRET))
    assert info.webhook_url == receiver.url
    actor = cluster.actors[info.bot_id]
    # The actor carries the webhook (for a server that adopts it), never in its repr.
    assert actor.spec.webhook_url == receiver.url and actor.spec.webhook_secret == SECRET
    assert SECRET not in repr(actor.spec)
    actor.update(state="running")
    actor.publish({"type": "running", "t": 1.0})
    await receiver.wait_for("bot.in_meeting", 10)
    actor.publish(_alert("Kana"))
    await receiver.wait_for("bot.alert", 10)
    # Ray restarts the actor: the new incarnation rejoins, says 'running' again and the gap.
    actor.die()
    await asyncio.sleep(0.6)
    actor.restart(state="running")
    actor.publish({"type": "running", "t": 20.0})
    actor.publish({"type": "gap", "gap_s": 14.2, "t": 20.0, "reason": "restart"})
    await _until(lambda: receiver.types().count("bot.in_meeting") == 2, "the restart's event")
    assert await manager.stop(info.bot_id)
    ended = await receiver.wait_for("bot.ended", 10)
    await manager.aclose()
    assert receiver.types() == [
        "bot.joining", "bot.in_meeting", "bot.alert", "bot.in_meeting", "bot.ended",
    ]  # fmt: skip
    events = receiver.events()
    assert [e["code"] for e in events] == [
        "joining",
        "in_meeting",
        "confused",
        "restarted",
        "stopped",
    ]
    restarted = events[3]
    assert restarted["data"]["gap_s"] == pytest.approx(14.2) and "14 s" in restarted["message"]
    assert events[2]["data"]["student"] == "Kana"
    assert {e["bot_id"] for e in events} == {info.bot_id}
    assert {e["meeting_id"] for e in events} == {info.meeting_id}
    # The API's redacted URL, never the room PIN.
    assert all("secret" not in e["meeting_url"] for e in events)
    for headers, body in receiver.deliveries:
        assert verify(SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
        assert not verify(
            "another secret", body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
        )
    assert ended["message"] == "Left."
    final = manager.get(info.bot_id)
    assert final is not None and (final.code, final.state.value) == ("stopped", "ended")
    # Delivery figures as for a local bot: per bot in the API, totals in /metrics.
    assert final.webhook is not None
    assert (final.webhook.delivered, final.webhook.failed, final.webhook.dropped) == (5, 0, 0)
    metrics = Metrics()
    metrics.add_collector(RayCollector(manager, metrics))
    assert _value(metrics.render(), "classpulse_webhook_events_delivered_total") == 5
    assert actor.stopped_with == "asked to leave" and set(cluster.killed) == {info.bot_id}


async def test_an_actor_gone_for_good_is_bot_failed_with_internal_error(
    tmp_path: Path, receiver: Receiver
) -> None:
    cluster = FakeCluster()
    manager = _manager(tmp_path, cluster)
    info = await manager.start(JANUS, "Ms Abe", {}, webhook=Webhook(receiver.url, SECRET))
    actor = cluster.actors[info.bot_id]
    actor.update(state="running")
    actor.publish({"type": "running", "t": 1.0})
    await receiver.wait_for("bot.in_meeting", 10)
    actor.die()
    del cluster.actors[info.bot_id]  # Ray gave it up: its name is free
    failed = await receiver.wait_for("bot.failed", 10)
    await manager.aclose()
    assert failed["code"] == "internal_error" and "Ray actor died" in failed["message"]
    shown = manager.get(info.bot_id)
    assert shown is not None and shown.state.value == "failed" and shown.code == "internal_error"


def _figures(scored: int, stale: int, p50: float, p95: float) -> ScoringFigures:
    return ScoringFigures(
        crops_scored=scored,
        dropped_stale=stale,
        dropped_overflow=1,
        latency_p50_s=p50,
        latency_p95_s=p95,
        lag_buckets=((0.5, scored), (float("inf"), scored)),
        lag_total_s=0.1 * scored,
        lag_count=scored,
    )


def _value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{series} not in /metrics"
    return float(found.group(1))


async def test_metrics_merge_the_actors_inference_figures_over_restarts(tmp_path: Path) -> None:
    cluster = FakeCluster()
    manager = _manager(tmp_path, cluster)
    metrics = Metrics()
    metrics.add_collector(RayCollector(manager, metrics))
    first = await manager.start(JANUS, "Ms Abe", {})
    second = await manager.start(JANUS.replace("8188", "8189"), "Mr Bo", {})
    a, b = cluster.actors[first.bot_id], cluster.actors[second.bot_id]
    a.update(state="running", figures=_figures(100, 3, 0.04, 0.09))
    b.update(state="running", figures=_figures(50, 2, 0.06, 0.30))
    await _until(lambda: all(bot.status.state == "running" for bot in manager.bots()), "running")
    text = metrics.render()
    assert _value(text, "classpulse_face_crops_scored_total") == 150
    assert _value(text, 'classpulse_face_crops_dropped_total{reason="stale"}') == 5
    assert _value(text, 'classpulse_face_crops_dropped_total{reason="overflow"}') == 2
    assert _value(text, 'classpulse_face_crops_dropped_total{reason="restart"}') == 0
    # Quantiles of two inference processes: the slower class's.
    assert _value(text, 'classpulse_inference_latency_seconds{quantile="0.5"}') == 0.06
    assert _value(text, 'classpulse_inference_latency_seconds{quantile="0.95"}') == 0.30
    assert _value(text, "classpulse_frame_to_state_lag_seconds_count") == 150
    # Class B's actor restarts and counts from zero: the totals do not go down.
    b.die()
    await asyncio.sleep(0.6)
    b.restart(state="running", figures=_figures(10, 0, 0.02, 0.05))
    await _until(lambda: manager._bots[second.bot_id].num_incarnations == 2, "the restart seen")
    await _until(lambda: manager._bots[second.bot_id].status.figures.crops_scored == 10, "polled")
    text = metrics.render()
    assert _value(text, "classpulse_face_crops_scored_total") == 160
    assert _value(text, 'classpulse_face_crops_dropped_total{reason="stale"}') == 5
    assert _value(text, 'classpulse_face_crops_dropped_total{reason="overflow"}') == 3
    assert _value(text, 'classpulse_inference_latency_seconds{quantile="0.95"}') == 0.09
    assert _value(text, "classpulse_frame_to_state_lag_seconds_count") == 160
    # Ended bots keep counting in the totals; the latency is of running classes only.
    await manager.aclose()
    text = metrics.render()
    assert _value(text, "classpulse_face_crops_scored_total") == 160
    assert _value(text, 'classpulse_inference_latency_seconds{quantile="0.95"}') == 0.0


async def test_a_restarted_server_adopts_the_running_actors(
    tmp_path: Path, receiver: Receiver
) -> None:
    cluster = FakeCluster()
    crashed = _manager(tmp_path, cluster)
    info = await crashed.start(JANUS, "Ms Abe", {}, webhook=Webhook(receiver.url, SECRET))
    actor: FakeActor = cluster.actors[info.bot_id]
    actor.update(state="running", num_followed=2)
    actor.publish({"type": "running", "t": 1.0})
    actor.publish(_alert("Kana"))
    await receiver.wait_for("bot.alert", 10)
    # Another server's actor (another database) on the same cluster, never adopted here.
    foreign = _manager(tmp_path / "other", cluster, "sqlite:///" + str(tmp_path / "other.db"))
    other = await foreign.start(JANUS.replace("8188", "8190"), "Mx Co", {})
    # The server dies without a word (SIGKILL): its tasks just stop.
    for bot in crashed.bots() + foreign.bots():
        assert bot.follower is not None
        if bot.lifecycle is not None:
            bot.lifecycle.task.cancel()
        bot.follower.cancel()
    await asyncio.sleep(0.1)
    delivered = len(receiver.deliveries)

    server = _manager(tmp_path, cluster)
    assert await server.adopt() == [info.bot_id]
    shown = server.get(info.bot_id)
    assert shown is not None and shown.state.value == "running"
    assert (shown.meeting_id, shown.teacher_code) == (info.meeting_id, info.teacher_code)
    assert shown.webhook_url == receiver.url and server.get(other.bot_id) is None
    # Live events from now on reach the new server's feed and the webhook receiver; the ones
    # before the adoption are not sent twice.
    assert info.meeting_id is not None
    live = server.feed.listen(info.meeting_id)
    actor.publish(_alert("Miki"))
    relayed = await asyncio.wait_for(live.get(), 5)
    assert relayed["student"] == "Miki"
    await _until(lambda: len(receiver.deliveries) == delivered + 1, "the new alert delivered")
    assert receiver.types()[delivered:] == ["bot.alert"]
    # DELETE through the new server stops the actor for good.
    assert await server.stop(info.bot_id)
    await receiver.wait_for("bot.ended", 10)
    await server.aclose()
    assert actor.stopped_with == "asked to leave" and info.bot_id in cluster.killed
    assert receiver.types().count("bot.joining") == 1
    assert receiver.types().count("bot.in_meeting") == 1
    assert other.bot_id in cluster.actors  # left to its own server
