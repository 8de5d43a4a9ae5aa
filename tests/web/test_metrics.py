"""/metrics in the Prometheus text format, the runtime collector, and JSON-lines logs."""

from __future__ import annotations

import io
import json
import logging
import re
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient

from bot.logs import configure_logging
from bot.scoring import LagHistogram
from bot.web.metrics import Metrics
from bot.web.runtime_bots import RuntimeCollector
from engine.types import InferenceStats
from storage import Writer
from tests.web.test_api import JANUS_URL

# One sample line: name, optional {labels}, value (Prometheus text format 0.0.4).
SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$'
)


def parse(text: str) -> dict[str, float]:
    """Every sample of an exposition (``name{labels}`` → value); fails on malformed lines."""
    values: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line.startswith("# HELP ") or not line:
            continue
        else:
            match = SAMPLE.match(line)
            assert match, f"malformed sample line: {line!r}"
            name = match.group(1)
            base = re.sub(r"_(bucket|sum|count|total)$", "", name)  # histogram and counter samples
            assert name in typed or base in typed, f"sample before its TYPE: {line!r}"
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def test_render_is_valid_exposition_with_escaped_labels() -> None:
    metrics = Metrics()
    metrics.crops_scored_rate.set(12.5)
    metrics.crops_scored.inc(3)
    metrics.crops_dropped.inc(2, reason='odd "reason"\nwith newline')
    metrics.inference_latency.set(0.042, quantile="0.5")
    values = parse(metrics.render())
    assert values["classpulse_face_crops_scored_per_second"] == 12.5
    assert values["classpulse_face_crops_scored_total"] == 3
    assert (
        values['classpulse_face_crops_dropped_total{reason="odd \\"reason\\"\\nwith newline"}'] == 2
    )
    assert values['classpulse_inference_latency_seconds{quantile="0.5"}'] == 0.042
    for name in (
        "bots_running",
        "participants_followed",
        "writer_backlog_rows",
        "alerts_sent_total",
    ):
        assert f"classpulse_{name}" in values
    with pytest.raises(ValueError, match=">= 0"):
        metrics.crops_scored.inc(-1)
    with pytest.raises(ValueError, match="labels"):
        metrics.crops_dropped.inc(1)


def test_a_failing_collector_does_not_take_metrics_down(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()

    def broken(_: Metrics) -> None:
        raise RuntimeError("writer gone")

    remove = metrics.add_collector(broken)
    metrics.add_collector(lambda m: m.writer_backlog.set(7))
    assert parse(metrics.render())["classpulse_writer_backlog_rows"] == 7
    assert "writer gone" in caplog.text
    remove()
    caplog.clear()
    metrics.render()
    assert "writer gone" not in caplog.text


async def test_metrics_endpoint_counts_running_bots(client: TestClient) -> None:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert parse(await response.text())["classpulse_bots_running"] == 0
    for room in ("1234", "1235"):  # one bot per meeting: two meetings
        url = JANUS_URL.replace("room=1234", f"room={room}")
        await client.post("/api/bots", json={"meeting_url": url, "teacher": "T"})
    assert parse(await (await client.get("/metrics")).text())["classpulse_bots_running"] == 2


def test_runtime_collector_copies_writer_inference_and_bot_figures(writer: Writer) -> None:
    def handle(state: str, alerts: int, people: int) -> SimpleNamespace:
        session = SimpleNamespace(
            num_alerts=alerts,
            num_followed=people,
            num_frames_analysed=10 * people,
            state=state,
            meeting_id="m",
            stop_reason=None,
            paused=False,
            teacher_code="k7mq-x2pa",
        )
        return SimpleNamespace(
            id=state,
            meeting_url="janus+ws://h",
            teacher="T",
            session=session,
            started_at=0.0,
            error=None,
            outcome=None,
            active=state != "ended",
        )

    stats = [_inference(scored=100), _inference(scored=160)]
    lag = LagHistogram()
    for seconds in (0.04, 0.15, 0.15, 2.5):
        lag.observe(seconds)
    runtime = SimpleNamespace(
        bots=lambda: [handle("running", 2, 3), handle("ended", 1, 0)],
        writer=writer,
        scoring=SimpleNamespace(stats=lambda: stats[0], lag=lag),
        media=None,
    )
    metrics = Metrics()
    metrics.add_collector(RuntimeCollector(runtime))  # type: ignore[arg-type]
    first = parse(metrics.render())
    assert first["classpulse_participants_followed"] == 3
    assert first["classpulse_alerts_sent_total"] == 3
    assert first["classpulse_face_crops_scored_total"] == 100
    assert first['classpulse_face_crops_dropped_total{reason="stale"}'] == 4
    assert first['classpulse_inference_latency_seconds{quantile="0.95"}'] == 0.08
    assert first["classpulse_writer_backlog_rows"] == writer.stats().pending
    assert first["classpulse_video_frames_analysed_total"] == 30
    assert first['classpulse_frame_to_state_lag_seconds_bucket{le="0.05"}'] == 1
    assert first['classpulse_frame_to_state_lag_seconds_bucket{le="0.2"}'] == 3
    assert first['classpulse_frame_to_state_lag_seconds_bucket{le="+Inf"}'] == 4
    assert first["classpulse_frame_to_state_lag_seconds_count"] == 4
    stats.pop(0)
    second = parse(metrics.render())
    assert second["classpulse_face_crops_scored_total"] == 160
    assert second["classpulse_face_crops_scored_per_second"] > 0


def _inference(scored: int) -> InferenceStats:
    return InferenceStats(
        submitted=scored + 10,
        scored=scored,
        dropped_stale=4,
        dropped_overflow=1,
        dropped_restart=0,
        pending=5,
        restarts=0,
        latency_p50_s=0.03,
        latency_p95_s=0.08,
        last_batch=12,
        last_tick_s=0.01,
        device="CPU",
    )


def test_json_lines_logs_keep_extra_fields_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", stream)
    try:
        log = logging.getLogger("classpulse.test")
        log.info("bot %s started", "b1", extra={"bot_id": "b1", "meeting_id": "m1"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")
        log.debug("not shown at INFO")
    finally:
        logging.getLogger().removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["message"] for e in entries] == ["bot b1 started", "failed"]
    assert entries[0]["bot_id"] == "b1" and entries[0]["meeting_id"] == "m1"
    assert entries[0]["level"] == "INFO" and entries[0]["logger"] == "classpulse.test"
    assert "RuntimeError: boom" in entries[1]["exception"]
