"""Benchmark: the bot's Janus connector receiving N students (640×360, 15 fps, VP8).

What it measures, per N, over a fixed window after a warm-up:
- received/decoded fps per student (frames out of aiortc's decoder, from ``FrameSource``);
- frame lag: decoder output time minus the time the publisher sent that frame (same host, same
  monotonic clock, publishers in another process). The frame a picture corresponds to is found
  from its RTP timestamp, offset by the one alignment that makes no lag negative — exact while the
  true lag of the fastest frame is under one frame interval (66 ms), which loopback guarantees;
- the bot process's CPU (all its threads, % of one core) and memory (RSS now and peak);
- Janus's and the publishers' CPU, for context.

The publishers send pre-encoded packets (a JAFFE clip encoded once), so their own cost is
packetising and SRTP, not encoding. Everything runs in a throwaway network namespace on 127.0.0.2
(see ``tests/bot/harness/netns.py``); needs root, Debian's ``janus`` and the JAFFE dataset.

Usage (from the repo root; be kind to shared machines)::

    nice -n 10 .venv/bin/python -m benchmarks.janus_bot --publishers 4 8 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.meetings import VideoTrackAdded, parse_meeting_url
from bot.meetings.frames import FrameSource
from bot.meetings.janus import JanusConnector
from engine.settings_paths import datasets_dir
from tests.bot.harness.clips import encode_vp8, jaffe_faces, read_vp8, render_frames
from tests.bot.harness.janus_server import JanusServer, RoomConfig
from tests.bot.harness.netns import NetworkNamespace
from tests.bot.harness.participants import JanusParticipant

REPO = Path(__file__).resolve().parents[1]
FPS = 15
RTP_TICKS_PER_FRAME = 90_000 // FPS
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class StudentTrace:
    source: FrameSource
    #: (RTP-derived pts, received_at) for every frame the consumer saw in the window.
    frames: list[tuple[int, float]] = field(default_factory=list)
    count_at_start: int = 0
    count_at_end: int = 0


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_memory_mb() -> tuple[float, float]:
    status = dict(
        line.split(":", 1)
        for line in Path("/proc/self/status").read_text().splitlines()
        if ":" in line
    )
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def lags_s(frames: list[tuple[int, float]], sent_at: list[float]) -> list[float]:
    """Per-frame lag, aligning RTP timestamps to send times (see the module docstring)."""
    if not frames or not sent_at:
        return []
    steps = [round(pts / RTP_TICKS_PER_FRAME) for pts, _ in frames]
    best: list[float] = []
    for first in range(len(sent_at)):
        if first + max(steps) >= len(sent_at):
            break
        lags = [
            received - sent_at[first + step]
            for step, (_, received) in zip(steps, frames, strict=True)
        ]
        if min(lags) < -0.002:
            break
        best = lags
    return best


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    server: JanusServer, num_publishers: int, clip_path: Path, warmup_s: float, seconds: float
) -> dict[str, object]:
    sent_file = Path(tempfile.mkstemp(prefix="janus-bench-", suffix=".json")[1])
    run_s = warmup_s + seconds + 30
    publishers = subprocess.Popen(
        server.netns.command(
            [
                sys.executable,
                "-m",
                "benchmarks.janus_bot",
                "publish",
                "--ws",
                server.websocket_url,
                "--count",
                str(num_publishers),
                "--clip",
                str(clip_path),
                "--out",
                str(sent_file),
                "--seconds",
                str(run_s),
            ]
        ),
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    assert publishers.stdout is not None
    ready = await asyncio.to_thread(publishers.stdout.readline)
    if b"ready" not in ready:
        raise RuntimeError(f"publishers did not start: {ready!r}")
    bot = JanusConnector(parse_meeting_url(server.meeting_url()))
    traces: dict[str, StudentTrace] = {}
    recording = False

    async def consume(name: str, trace: StudentTrace) -> None:
        async for frame in trace.source:
            if recording:
                trace.frames.append((int(frame.image.pts or 0), frame.received_at))

    consumers: list[asyncio.Task[None]] = []

    async def read_events() -> None:
        async for event in bot.events():
            if isinstance(event, VideoTrackAdded) and isinstance(event.source, FrameSource):
                trace = StudentTrace(event.source)
                traces[event.participant.display_name] = trace
                consumers.append(
                    asyncio.create_task(consume(event.participant.display_name, trace))
                )

    await bot.join()
    reader = asyncio.create_task(read_events())
    try:
        deadline = time.monotonic() + 60
        while len(traces) < num_publishers or any(
            t.source.num_received == 0 for t in traces.values()
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(traces)} of {num_publishers} videos arrived")
            await asyncio.sleep(0.2)
        await asyncio.sleep(warmup_s)
        janus_cpu0, publishers_cpu0 = process_cpu_s(server.pid or 0), process_cpu_s(publishers.pid)
        usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        for trace in traces.values():
            trace.count_at_start = trace.source.num_received
        recording = True
        await asyncio.sleep(seconds)
        recording = False
        usage1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        janus_cpu1, publishers_cpu1 = process_cpu_s(server.pid or 0), process_cpu_s(publishers.pid)
        for trace in traces.values():
            trace.count_at_end = trace.source.num_received
        rss_mb, peak_mb = self_memory_mb()
    finally:
        await bot.leave()
        reader.cancel()
        for task in consumers:
            task.cancel()
        await asyncio.gather(reader, *consumers, return_exceptions=True)
        publishers.terminate()
        await asyncio.to_thread(publishers.wait)
    sent = json.loads(sent_file.read_text()) if sent_file.stat().st_size else {}
    sent_file.unlink()
    wall = wall1 - wall0
    fps = {name: (t.count_at_end - t.count_at_start) / wall for name, t in traces.items()}
    all_lags = [lag for name, t in traces.items() for lag in lags_s(t.frames, sent.get(name, []))]
    bot_cpu = (usage1.ru_utime - usage0.ru_utime + usage1.ru_stime - usage0.ru_stime) / wall
    return {
        "publishers": num_publishers,
        "window_s": round(wall, 1),
        "fps_min": round(min(fps.values()), 2),
        "fps_mean": round(statistics.mean(fps.values()), 2),
        "lag_p50_ms": round(1000 * percentile(all_lags, 0.5), 1),
        "lag_p95_ms": round(1000 * percentile(all_lags, 0.95), 1),
        "lag_max_ms": round(1000 * max(all_lags, default=float("nan")), 1),
        "num_lag_samples": len(all_lags),
        "bot_cpu_pct_of_core": round(100 * bot_cpu, 1),
        "bot_rss_mb": round(rss_mb, 1),
        "bot_peak_rss_mb": round(peak_mb, 1),
        "janus_cpu_pct_of_core": round(100 * (janus_cpu1 - janus_cpu0) / wall, 1),
        "publishers_cpu_pct_of_core": round(100 * (publishers_cpu1 - publishers_cpu0) / wall, 1),
    }


async def publish(
    websocket_url: str, count: int, clip_path: Path, out: Path, seconds: float
) -> None:
    """The publishers' process: N students sending the clip; writes their send times at the end."""
    clip = read_vp8(clip_path, fps=FPS)
    students = [
        JanusParticipant(websocket_url, f"Student {n:02d}", clip=clip, chat=False)
        for n in range(1, count + 1)
    ]
    for student in students:
        await student.start()
    print("ready", flush=True)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop, seconds)
    out.write_text(json.dumps({s.display: (s.track.sent_at if s.track else []) for s in students}))
    for student in students:
        await student.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    publisher = sub.add_parser("publish", help="internal: the publishers' process")
    publisher.add_argument("--ws", required=True)
    publisher.add_argument("--count", type=int, required=True)
    publisher.add_argument("--clip", type=Path, required=True)
    publisher.add_argument("--out", type=Path, required=True)
    publisher.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--publishers", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--grain",
        type=float,
        default=0.0,
        help="camera-like noise in the clip (raises its bitrate)",
    )
    parser.add_argument("--bitrate", type=int, default=400_000, help="clip encoder target, bit/s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiortc.rtcrtpreceiver").setLevel(
        logging.ERROR
    )  # undecodable frames until a keyframe
    if args.command == "publish":
        asyncio.run(publish(args.ws, args.count, args.clip, args.out, args.seconds))
        return 0
    if os.geteuid() != 0:
        print("needs root (network namespace)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="janus-bench-"))
    faces = jaffe_faces(datasets_dir() / "jaffe", "KA", ("HA", "NE", "SA"))
    clip_path = work / "clip.ivf"
    frames = render_frames(faces, 4 * FPS, seconds_per_face=1.0, noise=args.grain)
    clip = encode_vp8(frames, clip_path, fps=FPS, bitrate=args.bitrate)
    clip_kbps = 8 * sum(map(len, clip.packets)) / (len(clip.packets) / FPS) / 1000
    print(
        json.dumps(
            {"clip": f"{clip.width}x{clip.height} {FPS} fps VP8", "clip_kbps": round(clip_kbps)}
        )
    )
    namespace = NetworkNamespace().create()
    rooms = RoomConfig(max_publishers=max(args.publishers) + 2, bitrate_bps=2_000_000)
    server = JanusServer(namespace, work, rooms)
    try:
        server.start()
        with namespace.entered():
            for count in args.publishers:
                result = asyncio.run(measure(server, count, clip_path, args.warmup, args.seconds))
                print(json.dumps(result), flush=True)
    finally:
        server.stop()
        namespace.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
