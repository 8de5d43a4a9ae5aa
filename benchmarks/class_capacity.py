"""Benchmark: how many students one ``classpulse serve`` analyses, as an operator runs it.

Per N: real Janus in a throwaway network namespace (127.0.0.2 on a veth pair); N students
publishing a pre-encoded 640×360 15 fps VP8 clip of a JAFFE face (no encoder cost, see
``benchmarks/janus_bot.py``); then, in the same run:

1. **decode only**: a plain subscriber process (the bot's Janus connector, no analysis) receives
   and decodes every student for the window — the floor any analysing bot pays; run before and
   after the product's phase, the ratio taken against their mean;
2. **the product**: ``classpulse serve`` started, the bot invited with ``POST /api/bots``; after
   the warm-up, over the window: analysed fps per student (``/metrics``
   ``classpulse_video_frames_analysed_total``), p95 frame-to-state lag (decoder output →
   scores in the state tracker, from the ``classpulse_frame_to_state_lag_seconds`` histogram),
   CPU of the server, its media workers and its inference process (% of one core, from
   ``/proc``), and their RSS.

Prints one JSON object per N, then a table and two knees: the largest N with ≥ 4.75 analysed fps
per student (5 asked) and p95 lag ≤ 1 s, and the largest that also keeps CPU ≤ 1.5 × decode-only
(unknown with ``--skip-decode``). ``--profile`` records each
server process with py-spy over the window and prints where the time goes (costs CPU itself:
use it in a separate run at the knee). Needs root, Debian's ``janus`` and JAFFE.

Usage (from the repo root; one heavy benchmark at a time)::

    .venv/bin/python -m benchmarks.class_capacity --students 8,16,32,48,60
    .venv/bin/python -m benchmarks.class_capacity --students 60 --media-workers 1   # in-process
    .venv/bin/python -m benchmarks.class_capacity --students 32 --skip-decode --soak-s 600
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks import procstat
from benchmarks.decode_only import decode_figures, decode_only
from engine.settings_paths import datasets_dir
from tests.bot.harness.clips import encode_vp8, jaffe_faces, render_frames
from tests.bot.harness.janus_server import JanusServer, RoomConfig
from tests.bot.harness.netns import NetworkNamespace

REPO = Path(__file__).resolve().parents[1]
FPS = 15
TOKEN = "capacity-benchmark-token-0123456789"
GOAL_FPS, GOAL_LAG_S, GOAL_CPU_RATIO = 4.75, 1.0, 1.5


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def lag_quantile(before: dict[str, float], after: dict[str, float], q: float) -> float:
    """Quantile of the lag observed between two scrapes, interpolated inside its bucket."""
    pattern = re.compile(r'classpulse_frame_to_state_lag_seconds_bucket\{le="([^"]+)"\}')
    buckets = sorted(
        (float(m.group(1)), after[name] - before.get(name, 0.0))
        for name in after
        if (m := pattern.fullmatch(name))
    )
    total = buckets[-1][1] if buckets else 0
    if not total:
        return float("nan")
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= q * total:
            if bound == float("inf"):
                return lower
            share = (q * total - below) / max(cumulative - below, 1e-9)
            return lower + share * (bound - lower)
        lower, below = bound, cumulative
    return lower


def start_publishers(
    server: JanusServer, count: int, clip: Path, seconds: float
) -> subprocess.Popen[bytes]:
    out = Path(tempfile.mkstemp(prefix="capacity-sent-", suffix=".json")[1])
    command = [sys.executable, "-m", "benchmarks.janus_bot", "publish", "--ws"]
    command += [server.websocket_url, "--count", str(count), "--clip", str(clip)]
    command += ["--out", str(out), "--seconds", str(seconds)]
    process = subprocess.Popen(server.netns.command(command), cwd=REPO, stdout=subprocess.PIPE)
    assert process.stdout is not None
    if b"ready" not in process.stdout.readline():
        raise RuntimeError("Expected the publishers to say 'ready'. Received: nothing")
    return process


def tree_figures(root: int) -> dict[str, tuple[float, float]]:
    """Per role: (CPU seconds, RSS MB) summed over the server's process tree."""
    figures: dict[str, tuple[float, float]] = {}
    for pid in procstat.descendants(root):
        kind = procstat.role(pid, root)
        cpu, rss = figures.get(kind, (0.0, 0.0))
        figures[kind] = (cpu + procstat.cpu_s(pid), rss + procstat.rss_mb(pid))
    return figures


def serve_and_measure(
    server: JanusServer, count: int, workers: int | None, args: argparse.Namespace, work: Path
) -> dict:
    env = {**os.environ, "CLASSPULSE_API_TOKEN": TOKEN, "CLASSPULSE_DATA_DIR": str(work)}
    env["CLASSPULSE_DATABASE_URL"] = f"sqlite:///{work / f'capacity-{count}.db'}"
    env["CLASSPULSE_LOG_LEVEL"] = "WARNING"
    if workers is not None:
        env["CLASSPULSE_MEDIA_WORKERS"] = str(workers)
    port = 18080
    command = [str(REPO / ".venv/bin/classpulse"), "serve", "--port", str(port)]
    serve = subprocess.Popen(
        server.netns.command(command), cwd=REPO, env=env, stdout=subprocess.PIPE
    )
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        if b"serving" not in line:
            raise RuntimeError(f"Expected classpulse serve to start. Received: {line!r}")
        root = serve.pid  # setpriv and nsenter exec: the same process
        body = json.dumps({"meeting_url": server.meeting_url(), "teacher": "Ms Capacity"})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/bots",
            body.encode(),
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status in (200, 201), response.status
        deadline = time.monotonic() + 120
        while metrics(port).get("classpulse_participants_followed", 0) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Expected {count} students followed within 120 s")
            time.sleep(1)
        time.sleep(args.warmup)
        m0, f0, t0 = metrics(port), tree_figures(root), time.monotonic()
        profiles = (
            procstat.start_profiles(root, args.window, work, REPO / ".venv/bin/py-spy")
            if args.profile
            else []
        )
        soak = _soak(port, root, count, args.soak_s) if args.soak_s else None
        time.sleep(max(0.0, t0 + args.window - time.monotonic()))
        m1, f1, t1 = metrics(port), tree_figures(root), time.monotonic()
        wall = t1 - t0
        cpu = {k: 100 * (f1[k][0] - f0.get(k, (0.0, 0.0))[0]) / wall for k in f1}
        frames = "classpulse_video_frames_analysed_total"
        crops = "classpulse_face_crops_scored_total"
        result = {
            "fps_per_student": round((m1[frames] - m0[frames]) / wall / count, 2),
            "crops_per_s_per_student": round((m1[crops] - m0[crops]) / wall / count, 2),
            "lag_p50_s": round(lag_quantile(m0, m1, 0.5), 3),
            "lag_p95_s": round(lag_quantile(m0, m1, 0.95), 3),
            "cpu_pct": round(sum(cpu.values()), 1),
            "cpu_pct_by_process": {k: round(v, 1) for k, v in sorted(cpu.items())},
            "rss_mb": round(sum(rss for _, rss in f1.values())),
            "rss_mb_by_process": {k: round(v[1]) for k, v in sorted(f1.items())},
            "worker_restarts": m1.get("classpulse_media_worker_restarts_total", 0),
        }
        if profiles:
            result["profile"] = procstat.finish_profiles(profiles)
        if soak is not None:
            result["soak"] = soak
        return result
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()


def _soak(port: int, root: int, count: int, seconds: float, every_s: float = 30.0) -> dict:
    """RSS of the server's tree and analysed fps every ``every_s`` for ``seconds``: whether
    memory stays flat (least-squares slope over the samples after the first minute)."""
    frames = "classpulse_video_frames_analysed_total"
    series: list[dict[str, float]] = []
    start, last = time.monotonic(), metrics(port)[frames]
    while time.monotonic() - start < seconds:
        time.sleep(every_s)
        now = metrics(port)[frames]
        rss = sum(r for _, r in tree_figures(root).values())
        t = time.monotonic() - start
        series.append(
            {"t_s": round(t), "rss_mb": round(rss), "fps": (now - last) / every_s / count}
        )
        last = now
        print(json.dumps({"soak": series[-1]}), flush=True)
    settled = [p for p in series if p["t_s"] >= 60] or series
    slope = 0.0
    if len(settled) >= 2:
        ts = [p["t_s"] / 60 for p in settled]
        mean_t, mean_r = sum(ts) / len(ts), sum(p["rss_mb"] for p in settled) / len(ts)
        covariance = sum(
            (t - mean_t) * (p["rss_mb"] - mean_r) for t, p in zip(ts, settled, strict=True)
        )
        slope = covariance / max(sum((t - mean_t) ** 2 for t in ts), 1e-9)
    return {
        "seconds": round(seconds),
        "rss_first_mb": series[0]["rss_mb"] if series else None,
        "rss_last_mb": series[-1]["rss_mb"] if series else None,
        "rss_slope_mb_per_min": round(slope, 2),
        "rss_per_student_mb": round(series[-1]["rss_mb"] / count, 1) if series else None,
        "fps_min": round(min(p["fps"] for p in series), 2) if series else None,
    }


def measure(
    server: JanusServer, count: int, workers: int | None, args: argparse.Namespace, clip: Path
) -> dict:
    work = Path(tempfile.mkdtemp(prefix="capacity-"))
    run_s = max(600.0, args.warmup + args.window + args.soak_s + 300.0)
    publishers = start_publishers(server, count, clip, run_s)
    try:
        result: dict = {"students": count, "media_workers": workers or "default"}
        decodes = []
        if not args.skip_decode:
            decodes.append(decode_only(server, count, min(args.warmup, 10), args.window))
        result.update(serve_and_measure(server, count, workers, args, work))
        if not args.skip_decode:
            decodes.append(decode_only(server, count, min(args.warmup, 10), args.window))
            result.update(decode_figures(decodes))
            result["cpu_over_decode"] = round(result["cpu_pct"] / result["decode_cpu_pct"], 2)
        return result
    finally:
        publishers.send_signal(signal.SIGTERM)
        publishers.wait(60)


def meets_goal(row: dict) -> bool | None:
    """Whether the row meets the goal; ``None`` when the ratio was not measured (--skip-decode)
    but fps and lag meet theirs — unknown, not met."""
    pace_ok = _paced(row)
    ratio = row.get("cpu_over_decode")
    if ratio is None:
        return None if pace_ok else False
    return pace_ok and ratio <= GOAL_CPU_RATIO


def _paced(row: dict) -> bool:
    return row["fps_per_student"] >= GOAL_FPS and row["lag_p95_s"] <= GOAL_LAG_S


_GOAL_WORDS = {True: "yes", False: "no", None: "fps and lag only (no decode-only run)"}


def table(rows: list[dict]) -> str:
    lines = [
        "| students | workers | fps/student | p95 lag s | CPU % (server+workers+inference) "
        "| decode-only CPU % | ratio | RSS MB | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['students']} | {r['media_workers']} | {r['fps_per_student']} "
            f"| {r['lag_p95_s']} | {r['cpu_pct']} {r['cpu_pct_by_process']} "
            f"| {r.get('decode_cpu_pct', '-')} {r.get('decode_cpu_pct_runs', '')} "
            f"| {r.get('cpu_over_decode', '-')} "
            f"| {r['rss_mb']} | {_GOAL_WORDS[meets_goal(r)]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", default="8,16,32,48,60", help="comma-separated N list")
    parser.add_argument(
        "--media-workers", default="", help="comma-separated counts (default: the server's)"
    )
    parser.add_argument("--warmup", type=float, default=25.0)
    parser.add_argument("--window", type=float, default=40.0)
    parser.add_argument("--skip-decode", action="store_true", help="no decode-only phase")
    parser.add_argument(
        "--soak-s",
        type=float,
        default=0.0,
        help="also sample RSS and fps every 30 s for this long (the window grows to match)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy each server process")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiortc.rtcrtpreceiver").setLevel(logging.ERROR)
    if os.geteuid() != 0:
        print("needs root (network namespace)", file=sys.stderr)
        return 2
    counts = [int(n) for n in args.students.split(",") if n.strip()]
    workers_list: list[int | None] = [
        int(n) for n in args.media_workers.split(",") if n.strip()
    ] or [None]
    work = Path(tempfile.mkdtemp(prefix="capacity-"))
    faces = jaffe_faces(datasets_dir() / "jaffe", "KA", ("HA", "NE", "SA"))
    clip = work / "clip.ivf"
    encode_vp8(render_frames(faces, 4 * FPS, seconds_per_face=1.0), clip, fps=FPS)
    namespace = NetworkNamespace().create()
    rooms = RoomConfig(max_publishers=max(counts) + 4, bitrate_bps=2_000_000)
    server = JanusServer(namespace, work, rooms)
    rows = []
    try:
        server.start()
        with namespace.entered():
            for workers in workers_list:
                for count in counts:
                    row = measure(server, count, workers, args, clip)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    finally:
        server.stop()
        namespace.close()
    print(table(rows))
    passing = [r["students"] for r in rows if meets_goal(r)]
    paced = [r["students"] for r in rows if _paced(r)]
    print(f"knee (largest N meeting the whole goal): {max(passing) if passing else 'none'}")
    print(f"knee (fps and lag alone): {max(paced) if paced else 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
