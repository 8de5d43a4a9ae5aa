"""The real ``BotManager``: the bot runtime (``bot/runtime.py``) behind the web app's protocol,
and the collector that copies the runtime's figures into ``Metrics`` at scrape time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from bot.live import LiveFeed
from bot.web.bot_lifecycle import BotLifecycle, RuntimeBot, bot_outcome
from bot.web.bots import BotInfo, BotManager, BotState, Webhook, WebhookDeliveries
from bot.web.metrics import Metrics
from bot.web.webhooks import WebhookSender
from storage import Storage

if TYPE_CHECKING:
    from bot.runtime import BotHandle, BotRuntime, ConnectorFactory


class RuntimeBotManager:
    """Starts, lists and stops the runtime's bots; their live events come from its feed."""

    def __init__(self, runtime: BotRuntime) -> None:
        self.runtime = runtime
        #: Bot id → its webhook deliveries (bots invited with a ``webhook_url``).
        self._lifecycles: dict[str, BotLifecycle] = {}
        #: Deliveries of the bots forgotten since (the /metrics totals never go down).
        self._forgotten = WebhookDeliveries()

    async def start(
        self,
        meeting_url: str,
        teacher: str,
        options: dict[str, Any],
        teacher_code: str | None = None,
        webhook: Webhook | None = None,
    ) -> BotInfo:
        handle = await self.runtime.start_bot(meeting_url, teacher, options, teacher_code)
        if webhook is not None:  # before the bot's task first runs: no event is missed
            sender = WebhookSender(webhook.url, webhook.secret)
            self._lifecycles[handle.id] = BotLifecycle(
                RuntimeBot(handle), self.runtime.live, sender
            )
            for bot_id, lifecycle in list(self._lifecycles.items()):
                if lifecycle.task.done() and self.runtime.get(bot_id) is None:
                    del self._lifecycles[bot_id]  # the runtime forgot the bot
                    self._forgotten = WebhookDeliveries.summed(
                        [self._forgotten, lifecycle.sender.stats.frozen()]
                    )
        return self._info(handle)

    def list(self) -> list[BotInfo]:
        infos = [self._info(handle) for handle in self.runtime.bots()]
        return sorted(infos, key=lambda info: info.started_at, reverse=True)

    def get(self, bot_id: str) -> BotInfo | None:
        handle = self.runtime.get(bot_id)
        return None if handle is None else self._info(handle)

    def _info(self, handle: BotHandle) -> BotInfo:
        lifecycle = self._lifecycles.get(handle.id)
        if lifecycle is None:
            return _info(handle)
        return _info(handle, lifecycle.sender.url, lifecycle.sender.stats.frozen())

    def webhook_totals(self) -> WebhookDeliveries:
        """Every bot's webhook deliveries since the server started, forgotten bots included."""
        senders = [lifecycle.sender.stats.frozen() for lifecycle in self._lifecycles.values()]
        return WebhookDeliveries.summed([*senders, self._forgotten])

    async def stop(self, bot_id: str) -> bool:
        return await self.runtime.stop_bot(bot_id)

    def subscribe(self, meeting_id: str) -> AsyncIterator[dict[str, Any]]:
        return self.runtime.live.subscribe(meeting_id)

    async def aclose(self) -> None:
        await self.runtime.aclose()
        # The bots' last events, delivered side by side (each bounded by its drain time).
        await asyncio.gather(*(lifecycle.aclose() for lifecycle in self._lifecycles.values()))


@asynccontextmanager
async def runtime_bot_manager(
    storage: Storage,
    feed: LiveFeed,
    metrics: Metrics,
    rooms: Any = None,
    *,
    max_bots: int = 10,
    media_workers: int | None = None,
    mode: str = "engagement",
) -> AsyncIterator[BotManager]:
    """A started runtime (writer, inference process, face detector) for the server's lifetime."""
    from bot.runtime import (
        BotRuntime,  # the inference client: imported only when bots can run
        janus_connector,
    )

    factories: list[ConnectorFactory] = [janus_connector]
    if rooms is not None:
        from bot.room.connector import builtin_connector_factory

        factories.append(builtin_connector_factory(rooms))
    async with BotRuntime(
        storage,
        live=feed,
        connector_factories=factories,
        max_bots=max_bots,
        num_media_workers=media_workers,
        mode=mode,
    ) as runtime:
        manager = RuntimeBotManager(runtime)
        remove = metrics.add_collector(RuntimeCollector(runtime, manager.webhook_totals))
        try:
            yield manager
        finally:
            remove()


class RuntimeCollector:
    """Copies the runtime's figures into ``Metrics``; the analysed-frames rate is measured
    between two scrapes."""

    def __init__(
        self, runtime: BotRuntime, webhooks: Callable[[], WebhookDeliveries] | None = None
    ) -> None:
        self.runtime = runtime
        #: The webhook delivery totals (``RuntimeBotManager.webhook_totals``).
        self.webhooks = webhooks
        self._last: tuple[float, int] | None = None

    def __call__(self, metrics: Metrics) -> None:
        if self.webhooks is not None:
            totals = self.webhooks()
            metrics.webhook_delivered.set_total(totals.delivered)
            metrics.webhook_failed.set_total(totals.failed)
            metrics.webhook_dropped.set_total(totals.dropped)
        handles = self.runtime.bots()
        running = [h for h in handles if _info(h).state is BotState.RUNNING]
        metrics.participants_followed.set(sum(h.session.num_followed for h in running))
        metrics.alerts_sent.set_total(sum(h.session.num_alerts for h in handles))
        metrics.video_frames_analysed.set_total(sum(h.session.num_frames_analysed for h in handles))
        lag = self.runtime.scoring.lag
        metrics.frame_to_state_lag.set_from(lag.buckets(), lag.total_s, lag.count)
        if self.runtime.media is not None:
            metrics.media_worker_restarts.set_total(self.runtime.media.num_restarts)
        writer = self.runtime.writer
        if writer is not None:
            stats = writer.stats()
            metrics.writer_backlog.set(stats.pending)
            metrics.writer_dropped.set_total(stats.dropped)
        inference = self.runtime.scoring.stats()
        metrics.crops_scored.set_total(inference.scored)
        metrics.inference_latency.set(inference.latency_p50_s, quantile="0.5")
        metrics.inference_latency.set(inference.latency_p95_s, quantile="0.95")
        metrics.crops_dropped.set_total(inference.dropped_stale, reason="stale")
        metrics.crops_dropped.set_total(inference.dropped_overflow, reason="overflow")
        metrics.crops_dropped.set_total(inference.dropped_restart, reason="restart")
        now = time.monotonic()
        if self._last is not None and now > self._last[0]:
            rate = (inference.scored - self._last[1]) / (now - self._last[0])
            metrics.crops_scored_rate.set(max(0.0, rate))
        self._last = (now, inference.scored)


def _info(
    handle: BotHandle, webhook_url: str | None = None, webhook: WebhookDeliveries | None = None
) -> BotInfo:
    session = handle.session
    outcome = bot_outcome(handle)
    try:
        state = BotState("failed" if handle.error else session.state)
    except ValueError:
        state = BotState.FAILED
    return BotInfo(
        bot_id=handle.id,
        meeting_url=handle.meeting_url,
        teacher=handle.teacher,
        teacher_code=session.teacher_code,
        state=state,
        started_at=handle.started_at,
        meeting_id=session.meeting_id,
        error=handle.error,
        stop_reason=session.stop_reason,
        num_alerts=session.num_alerts,
        paused=session.paused,
        code=None if outcome is None else outcome[0],
        message=None if outcome is None else outcome[1],
        webhook_url=webhook_url,
        webhook=webhook,
    )
