"""``/metrics`` for bots on a Ray cluster: the figures each actor relays with its status, merged
into the series a local server exports (``bot.web.runtime_bots.RuntimeCollector``), plus per node
(``classpulse_node_*{node="…"}``).

How they merge: counters (crops scored and dropped by reason, frames, alerts, media worker
restarts, rows dropped) and the frame-to-state lag histogram are summed over the actors, over
each actor's earlier incarnations (a restarted actor counts from zero; the server carries the
dead one's totals) and over the bots the server has forgotten, so a total never goes down while
the server runs. ``classpulse_inference_latency_seconds{quantile}`` is the largest of the
running actors' own quantiles: every actor has its own inference process, quantiles of separate
processes cannot be added, and the slowest class is the one to see.
"""

from __future__ import annotations

import time
from typing import Protocol

from bot.launch.remote_bot import RemoteBot
from bot.launch.spec import ScoringFigures
from bot.web.bots import WebhookDeliveries
from bot.web.metrics import Gauge, Metrics


class RelayedBots(Protocol):
    """What the collector reads of ``bot.launch.ray_manager.RayBotManager`` (which builds it)."""

    @property
    def retired(self) -> ScoringFigures: ...

    def bots(self) -> list[RemoteBot]: ...

    def webhook_totals(self) -> WebhookDeliveries: ...


class RayCollector:
    """Copies the relayed figures into ``Metrics`` at scrape time; the crops-scored rate is
    measured between two scrapes, as the local collector does."""

    def __init__(self, manager: RelayedBots, metrics: Metrics) -> None:
        self.manager = manager
        self._last: tuple[float, int] | None = None
        self.node_bots = Gauge(
            "classpulse_node_bots_running", "Bots running on each Ray node.", ("node",)
        )
        self.node_followed = Gauge(
            "classpulse_node_participants_followed",
            "Participants whose video is analysed on each Ray node.",
            ("node",),
        )
        self.node_backlog = Gauge(
            "classpulse_node_writer_backlog_rows",
            "Rows waiting in the storage writers of each Ray node's actors.",
            ("node",),
        )
        # ``Metrics`` renders every series among its attributes: the node series join them.
        for name in ("node_bots", "node_followed", "node_backlog"):
            setattr(metrics, f"ray_{name}", getattr(self, name))

    def __call__(self, metrics: Metrics) -> None:
        bots = self.manager.bots()
        statuses = [bot.status for bot in bots]
        running = [s for s in statuses if s.state == "running"]
        metrics.participants_followed.set(sum(s.num_followed for s in running))
        metrics.alerts_sent.set_total(sum(s.num_alerts for s in statuses))
        metrics.video_frames_analysed.set_total(sum(s.num_frames_analysed for s in statuses))
        metrics.writer_backlog.set(sum(s.rows_pending for s in statuses if not s.closed))
        metrics.writer_dropped.set_total(sum(s.rows_dropped for s in statuses))
        webhooks = self.manager.webhook_totals()
        metrics.webhook_delivered.set_total(webhooks.delivered)
        metrics.webhook_failed.set_total(webhooks.failed)
        metrics.webhook_dropped.set_total(webhooks.dropped)
        self._scoring(
            metrics, ScoringFigures.merged([self.manager.retired, *(b.figures() for b in bots)])
        )
        latest = ScoringFigures.merged([s.figures for s in running if s.figures.crops_scored])
        metrics.inference_latency.set(latest.latency_p50_s, quantile="0.5")
        metrics.inference_latency.set(latest.latency_p95_s, quantile="0.95")
        for series in (self.node_bots, self.node_followed, self.node_backlog):
            for labels, _ in series.samples():
                series.set(0.0, **dict(labels))
        for status in statuses:
            if not status.node_id or status.closed:
                continue
            node = status.node_id[:12]
            if status.state == "running":
                self.node_bots.inc(node=node)
                self.node_followed.inc(status.num_followed, node=node)
            self.node_backlog.inc(status.rows_pending, node=node)

    def _scoring(self, metrics: Metrics, total: ScoringFigures) -> None:
        metrics.crops_scored.set_total(total.crops_scored)
        metrics.crops_dropped.set_total(total.dropped_stale, reason="stale")
        metrics.crops_dropped.set_total(total.dropped_overflow, reason="overflow")
        metrics.crops_dropped.set_total(total.dropped_restart, reason="restart")
        metrics.media_worker_restarts.set_total(total.media_worker_restarts)
        if total.lag_buckets:
            metrics.frame_to_state_lag.set_from(
                total.lag_buckets, total.lag_total_s, total.lag_count
            )
        now = time.monotonic()
        if self._last is not None and now > self._last[0]:
            rate = (total.crops_scored - self._last[1]) / (now - self._last[0])
            metrics.crops_scored_rate.set(max(0.0, rate))
        self._last = (now, total.crops_scored)
