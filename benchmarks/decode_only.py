"""The capacity benchmark's decode-only phase: a plain subscriber process (the bot's Janus
connector and frame sources, no analysis) receives and decodes every student for a window, and
prints its CPU, decoded fps per student and RSS as one JSON line. ``benchmarks.class_capacity``
runs it in the benchmark's network namespace before and after the product's phase.

Usage (internal)::

    .venv/bin/python -m benchmarks.decode_only --url janus://... --count 60 --warmup 10 --window 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import procstat
from tests.bot.harness.janus_server import JanusServer

REPO = Path(__file__).resolve().parents[1]


def decode_only(server: JanusServer, count: int, warmup_s: float, window_s: float) -> dict:
    command = [sys.executable, "-m", "benchmarks.decode_only", "--url"]
    command += [server.meeting_url(), "--count", str(count)]
    command += ["--warmup", str(warmup_s), "--window", str(window_s)]
    done = subprocess.run(
        server.netns.command(command), cwd=REPO, capture_output=True, check=True, timeout=300
    )
    result: dict = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


async def _decode(url: str, count: int, warmup_s: float, window_s: float) -> dict:
    """The decode-only subscriber: the bot's connector with its frame sources, nothing else."""
    from bot.meetings import VideoTrackAdded, parse_meeting_url
    from bot.meetings.frames import FrameSource
    from bot.meetings.janus import JanusConnector

    connector = JanusConnector(parse_meeting_url(url))
    sources: list[FrameSource] = []

    async def read() -> None:
        async for event in connector.events():
            if isinstance(event, VideoTrackAdded) and isinstance(event.source, FrameSource):
                sources.append(event.source)

    await connector.join()
    reader = asyncio.create_task(read())
    deadline = time.monotonic() + 90
    while len(sources) < count or any(s.num_received == 0 for s in sources):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Expected {count} videos. Received: {len(sources)}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(warmup_s)
    cpu0, frames0, t0 = _self_cpu_s(), sum(s.num_received for s in sources), time.monotonic()
    await asyncio.sleep(window_s)
    cpu1, frames1, t1 = _self_cpu_s(), sum(s.num_received for s in sources), time.monotonic()
    rss = procstat.rss_mb(os.getpid())
    await connector.leave()
    reader.cancel()
    return {
        "decode_cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "decode_fps_per_student": round((frames1 - frames0) / (t1 - t0) / count, 2),
        "decode_rss_mb": round(rss),
    }


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def decode_figures(decodes: list[dict]) -> dict:
    """Decode-only before and after the product's phase: their mean and each (one phase gave
    60–77 % at 60 students in runs of the same code; the VM's speed moves by the hour)."""
    cpus = [d["decode_cpu_pct"] for d in decodes]
    fps = min(d["decode_fps_per_student"] for d in decodes)
    mean = round(sum(cpus) / len(cpus), 1)
    return {
        "decode_cpu_pct": mean,
        "decode_cpu_pct_runs": cpus,
        "decode_fps_per_student": fps,
        "decode_rss_mb": max(d["decode_rss_mb"] for d in decodes),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--warmup", type=float, required=True)
    parser.add_argument("--window", type=float, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiortc.rtcrtpreceiver").setLevel(logging.ERROR)
    result = asyncio.run(_decode(args.url, args.count, args.warmup, args.window))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
