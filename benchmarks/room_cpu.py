"""Benchmark: the built-in room's server CPU for N simulated students, each relayed to the others.

What it measures, per N, over a fixed window after a warm-up:
- the server process's CPU (room + the bot's connector reading every camera; all threads, % of one
  core) — decoding each camera once, scaling and encoding every tile;
- tiles: how many each student receives and at what frame rate; the bot's frames per second.

The students (``bot.room.simulated``, 640×360 at 15 fps, the bundled face or ``--faces DIR``) run
in a second process so that their encoders are not counted. Everything is on 127.0.0.1.

Usage (from the repo root; be kind to shared machines)::

    nice -n 10 .venv/bin/python -m benchmarks.room_cpu --students 2 4 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web

from bot.meetings import VideoTrackAdded
from bot.meetings.frames import FrameSource, FrameSourceClosedError
from bot.room import BuiltinRoomConnector, RoomSettings, setup_room
from bot.room.simulated import start_students

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str = "self") -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


async def read_frames(
    source: FrameSource, counts: dict[str, int], name: str, fps: float = 5.0
) -> None:
    """What the bot does: sample the newest frame a few times a second."""
    try:
        while True:
            frame = await source.next()
            frame.image.to_ndarray(format="bgr24")
            counts[name] = counts.get(name, 0) + 1
            await asyncio.sleep(1 / fps)
    except FrameSourceClosedError:
        pass


async def measure(
    num_students: int, seconds: float, warmup: float, tiles: bool, faces: str | None
) -> dict[str, object]:
    app = web.Application()
    registry = setup_room(app, RoomSettings.for_host("127.0.0.1"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    room = registry.create("bench")
    bot = BuiltinRoomConnector(registry, "bench")
    await bot.join()
    counts: dict[str, int] = {}
    readers: list[asyncio.Task[None]] = []

    async def events() -> None:
        async for event in bot.events():
            if isinstance(event, VideoTrackAdded) and isinstance(event.source, FrameSource):
                readers.append(
                    asyncio.create_task(
                        read_frames(event.source, counts, event.participant.display_name)
                    )
                )

    listener = asyncio.create_task(events())
    command = [
        sys.executable,
        "-m",
        "benchmarks.room_cpu",
        "--clients",
        base_url,
        str(num_students),
    ]
    command += ["--tiles" if tiles else "--no-tiles"] + (["--faces", faces] if faces else [])
    clients = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert clients.stdout is not None
        ready = await asyncio.to_thread(clients.stdout.readline)
        if ready.strip() != "ready":
            raise RuntimeError(f"clients did not start: {ready!r}")
        await asyncio.sleep(warmup)
        sent_before = {
            peer.info.display_name: sum(t.num_sent for _, t in peer.tiles)
            for peer in map(room.peer, [m.id for m in room.members()])
            if peer
        }
        counts.clear()
        cpu_before, wall_before = cpu_seconds(), time.monotonic()
        client_cpu_before = cpu_seconds(clients.pid)
        await asyncio.sleep(seconds)
        wall = time.monotonic() - wall_before
        cpu = cpu_seconds() - cpu_before
        client_cpu = cpu_seconds(clients.pid) - client_cpu_before
        tiles_sent = {
            peer.info.display_name: (
                sum(t.num_sent for _, t in peer.tiles) - sent_before.get(peer.info.display_name, 0),
                sum(1 for s in peer.shown if s),
            )
            for peer in map(room.peer, [m.id for m in room.members()])
            if peer
        }
    finally:
        assert clients.stdin is not None
        clients.stdin.close()
        await asyncio.to_thread(clients.wait, 30)
        listener.cancel()
        for reader in readers:
            reader.cancel()
        await bot.leave()
        await runner.cleanup()
    return {
        "students": num_students,
        "tiles": tiles,
        "server_cpu_percent": round(100 * cpu / wall, 1),
        "clients_cpu_percent": round(100 * client_cpu / wall, 1),
        "tiles_per_student": sorted({shown for _, shown in tiles_sent.values()}),
        "tile_fps_per_tile": round(
            sum(sent for sent, _ in tiles_sent.values())
            / max(1, sum(n for _, n in tiles_sent.values()))
            / wall,
            1,
        ),
        "bot_fps_per_student": round(sum(counts.values()) / max(1, len(counts)) / wall, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


async def run_clients(base_url: str, num_students: int, tiles: bool, faces: str | None) -> None:
    names = [f"Student {index + 1}" for index in range(num_students)]
    students = await start_students(
        base_url, "bench", names, receive_tiles=tiles, faces=Path(faces) if faces else None
    )
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the server side closes our stdin
    for student in students:
        await student.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--no-tiles", dest="tiles", action="store_false", help="students receive no tiles"
    )
    parser.add_argument("--tiles", dest="tiles", action="store_true")
    parser.add_argument(
        "--faces", default=None, help="folder of face images (default: the bundled portrait)"
    )
    parser.add_argument("--clients", nargs=2, metavar=("BASE_URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.clients:
        asyncio.run(run_clients(args.clients[0], int(args.clients[1]), args.tiles, args.faces))
        return 0
    print(
        f"# room server CPU, {os.cpu_count()} CPUs, {args.seconds:g} s windows"
        f" after {args.warmup:g} s warm-up"
    )
    for num_students in args.students:
        print(
            json.dumps(
                asyncio.run(
                    measure(num_students, args.seconds, args.warmup, args.tiles, args.faces)
                )
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
