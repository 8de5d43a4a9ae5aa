"""Operations figures for ``/metrics``, exposed with ``prometheus-client``.

Whoever owns a number may set it as it changes (``metrics.crops_scored_rate.set(12.5)``,
``metrics.alerts_sent.inc()``); figures kept elsewhere (the storage writer's backlog, the
inference client's latency, the bots' counts) are copied at scrape time by collectors registered
with ``add_collector`` (``bot.web.runtime_bots.RuntimeCollector`` does it for the bot runtime).
The values live in small series objects (a lock each, because collectors may run in another
thread); ``prometheus_client`` turns them into metric families and writes the exposition, from a
registry of this ``Metrics`` alone (not the library's global one: tests and several apps in one
process stay apart).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

#: The content type of ``Metrics.render`` (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


class _Series:
    """Values of one metric name, one per label set (the empty set when unlabelled)."""

    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...] = ()) -> None:
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValueError(
                f"Expected a Prometheus metric name ([a-zA-Z_][a-zA-Z0-9_]*). Received: {name!r}"
            )
        self.name = name
        self.help = help_text
        self.label_names = label_names
        self._values: dict[Labels, float] = {} if label_names else {(): 0.0}
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.label_names):
            raise ValueError(
                f"Expected the labels {list(self.label_names)} for {self.name}. "
                f"Received: {sorted(labels)}"
            )
        return tuple((name, str(labels[name])) for name in self.label_names)

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[tuple[Labels, float]]:
        with self._lock:
            return sorted(self._values.items())


class Counter(_Series):
    """A total that only grows (frames analysed, alerts sent). Prometheus reads a drop to a lower
    value as a restart, so ``set_total`` may also take a fresh total after a process restart."""

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if not amount >= 0:
            raise ValueError(f"Expected a counter increment >= 0. Received: {amount!r}")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set_total(self, total: float, **labels: str) -> None:
        """Copies a total kept elsewhere (e.g. ``InferenceStats.dropped_stale``)."""
        if not (math.isfinite(total) and total >= 0):
            raise ValueError(f"Expected a counter total >= 0. Received: {total!r}")
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(total)


class Gauge(_Series):
    """A value that goes up and down (bots running, writer backlog)."""

    def set(self, value: float, **labels: str) -> None:
        if math.isnan(value):
            raise ValueError(f"Expected a number for {self.name}. Received: NaN")
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)


class Histogram(_Series):
    """A distribution copied from a ``LagHistogram`` kept elsewhere (cumulative bucket counts,
    sum and count), rendered as Prometheus's ``_bucket{le=…}``, ``_sum`` and ``_count``."""

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._buckets: tuple[tuple[float, int], ...] = ()
        self._sum = 0.0
        self._count = 0

    def set_from(self, buckets: tuple[tuple[float, int], ...], total: float, count: int) -> None:
        """``buckets``: (upper bound, observations at or below it), ascending, ``inf`` last."""
        with self._lock:
            self._buckets, self._sum, self._count = buckets, float(total), int(count)

    def family(self) -> HistogramMetricFamily:
        with self._lock:
            buckets = [(_bound(le), float(n)) for le, n in self._buckets]
            if not buckets:  # nothing copied yet: the one bucket every histogram has
                buckets = [("+Inf", float(self._count))]
            return HistogramMetricFamily(self.name, self.help, buckets=buckets, sum_value=self._sum)


class Metrics:
    """The figures one classpulse process exports. Names follow Prometheus conventions (units in
    the name, ``_total`` on counters); the attribute names are what the session sets."""

    def __init__(self) -> None:
        self.bots_running = Gauge("classpulse_bots_running", "Bots currently in a meeting.")
        self.participants_followed = Gauge(
            "classpulse_participants_followed",
            "Participants whose video is being analysed, all bots together.",
        )
        self.crops_scored_rate = Gauge(
            "classpulse_face_crops_scored_per_second",
            "Face crops scored by the model per second over the last seconds, all bots.",
        )
        self.crops_scored = Counter(
            "classpulse_face_crops_scored_total", "Face crops scored by the model since start."
        )
        self.inference_latency = Gauge(
            "classpulse_inference_latency_seconds",
            "Seconds from handing a face to the inference process to its scores, "
            "by quantile over recent frames.",
            ("quantile",),
        )
        self.crops_dropped = Counter(
            "classpulse_face_crops_dropped_total",
            "Face crops never scored because inference was behind, by reason: stale (older "
            "than the client's max age), overflow (pushed out of the queue), restart (in flight "
            "when the inference process died).",
            ("reason",),
        )
        self.video_frames_analysed = Counter(
            "classpulse_video_frames_analysed_total",
            "Video frames searched for faces since start, with or without a face, all bots "
            "(classpulse_face_crops_scored_total counts the faces scored).",
        )
        self.frame_to_state_lag = Histogram(
            "classpulse_frame_to_state_lag_seconds",
            "Seconds from a frame leaving the video decoder to its face's scores reaching the "
            "state tracker.",
        )
        self.media_worker_restarts = Counter(
            "classpulse_media_worker_restarts_total",
            "Media worker processes that died and were started again.",
        )
        self.alerts_sent = Counter(
            "classpulse_alerts_sent_total", "Alerts sent to teachers (delivered or not)."
        )
        self.writer_backlog = Gauge(
            "classpulse_writer_backlog_rows", "Rows waiting in the storage writer's buffer."
        )
        self.writer_dropped = Counter(
            "classpulse_writer_dropped_rows_total",
            "Rows the storage writer dropped (buffer full or database down).",
        )
        self.webhook_delivered = Counter(
            "classpulse_webhook_events_delivered_total",
            "Bot lifecycle webhook events a receiver accepted (2xx), all bots.",
        )
        self.webhook_failed = Counter(
            "classpulse_webhook_deliveries_failed_total",
            "Webhook events given up on: refused by the receiver, or every attempt failed.",
        )
        self.webhook_dropped = Counter(
            "classpulse_webhook_events_dropped_total",
            "Webhook events never sent: pushed out of a bot's full queue, or still queued when "
            "its drain time ran out.",
        )
        self._collectors: list[Callable[[Metrics], None]] = []
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Families(self._families))

    def series(self) -> Iterable[_Series]:
        return [value for value in vars(self).values() if isinstance(value, _Series)]

    def add_collector(self, collect: Callable[[Metrics], None]) -> Callable[[], None]:
        """Runs ``collect(metrics)`` before every scrape to copy figures kept elsewhere; returns
        a function that removes it (call it when the writer or client it reads is closed)."""
        self._collectors.append(collect)

        def remove() -> None:
            if collect in self._collectors:
                self._collectors.remove(collect)

        return remove

    def collect(self) -> None:
        for collect in list(self._collectors):
            try:
                collect(self)
            except Exception:  # a broken collector must not take /metrics down
                logger.exception("metrics collector %r failed", collect)

    def render(self) -> str:
        """The Prometheus text exposition of every series, after running the collectors."""
        self.collect()
        return generate_latest(self._registry).decode()

    def _families(self) -> Iterator[Metric]:
        for series in self.series():
            if isinstance(series, Histogram):
                yield series.family()
                continue
            family_type = CounterMetricFamily if isinstance(series, Counter) else GaugeMetricFamily
            family = family_type(series.name, series.help, labels=series.label_names)
            for labels, value in series.samples():
                family.add_metric([text for _, text in labels], value)
            yield family


class _Families(Collector):
    """What ``prometheus_client``'s registry asks at each scrape: the ``Metrics``' families."""

    def __init__(self, families: Callable[[], Iterator[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return self._families()


def _bound(le: float) -> str:
    return "+Inf" if math.isinf(le) else repr(float(le))
