"""``classpulse demo``: a whole class on one machine — the built-in room, the bot, students, alerts.

Starts the server on 127.0.0.1 with the built-in room, invites the bot, and joins simulated
students whose faces change expression (neutral → angry → happy), plus a console "teacher"
that prints the alerts it is whispered. Runs until Ctrl-C (or ``--duration``), then prints the
class summary read back from the database. The class is stored in the user's normal database (a
meeting titled "classpulse demo"), so ``history``, ``report`` and ``serve`` show it afterwards; the
dashboard link carries a token made for this run only (the user's own API token is left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.cli.join import summary_text
from bot.cli.serve import bound_port
from bot.logs import configure_logging
from bot.settings import Settings
from bot.web.auth import private_folder
from engine.settings_paths import datasets_dir

logger = logging.getLogger(__name__)

TEACHER = "Teacher"
STUDENT_NAMES = ("Aiko", "Ben", "Chen", "Dara", "Emil", "Fay")
ROOM = "demo"
#: Attentive, then each student's posed anger, disgust and fear (designed: confused, as the
#: mapping reads them), then their sad photos one after another (designed: bored), then a smile.
#: The photos are chosen by the designed expression, not by what the model happens to read
#: well: every student should be alerted in both designed phases.
DEMO_SCHEDULE = (
    ("neutral", 20.0),
    ("angry", 14.0),
    ("disgust", 13.0),
    ("fear", 13.0),
    ("sad", 10.0),
    ("sad", 10.0),
    ("sad", 10.0),
    ("sad", 10.0),
    ("happy", 20.0),
)


def add_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="a class in the built-in room: the bot, simulated students, alerts, the summary",
        description="Serves the built-in room on 127.0.0.1, invites the bot and simulated students "
        "whose expression changes, prints the URLs, and at exit the class summary.",
    )
    parser.add_argument(
        "--faces",
        type=Path,
        default=None,
        help="folder of face images (e.g. JAFFE); default: $CLASSPULSE_DATASETS/jaffe when it "
        "exists, else a portrait shipped with matplotlib (no expression change then)",
    )
    parser.add_argument("--students", type=int, default=3, help="simulated students (1–6)")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    parser.add_argument(
        "--alert-after",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="sustained confusion before an alert (demo default 15)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data folder whose database keeps the class (default: the normal one, so that "
        "history, report and serve show it; $CLASSPULSE_DATABASE_URL still wins)",
    )
    parser.add_argument(
        "--no-console-teacher",
        action="store_true",
        help="do not join a console teacher; open the teacher link yourself",
    )
    parser.set_defaults(handler=run_demo)


def default_faces() -> Path | None:
    jaffe = datasets_dir() / "jaffe"
    return jaffe if any(jaffe.glob("*.tiff")) else None


def run_demo(args: argparse.Namespace) -> int:
    if not 1 <= args.students <= len(STUDENT_NAMES):
        raise ValueError(f"Expected 1 to {len(STUDENT_NAMES)} students. Received: {args.students}")
    faces = args.faces if args.faces is not None else default_faces()
    if faces is not None and not faces.is_dir():
        raise ValueError(f"Expected a folder of face images for --faces. Received: {faces}")
    base = Settings.from_env(data_dir=args.data_dir)
    private_folder(base.data_dir)
    # The user's own token stays as it is (serve keeps working with it); without one given by
    # setting, the dashboard link of this run carries a token that lives in memory only.
    settings = Settings.from_env(
        host="127.0.0.1",
        port=args.port,
        data_dir=base.data_dir,
        api_token=base.api_token or secrets.token_urlsafe(32),
    )
    configure_logging("WARNING", "text")
    return asyncio.run(demo(settings, args, faces))


async def demo(settings: Settings, args: argparse.Namespace, faces: Path | None) -> int:
    from bot.room import ROOM_REGISTRY
    from bot.room.simulated import SimulatedParticipant, start_students
    from bot.web.app import create_app
    from bot.web.keys import BOTS, STORAGE

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(number, stop.set)
    token = settings.api_token
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False)
    students: list[SimulatedParticipant] = []
    teacher: SimulatedParticipant | None = None
    bot_id: str | None = None
    meeting_id: str | None = None
    try:
        print("classpulse demo: starting the server and the inference process…", flush=True)
        await runner.setup()  # opens the database and starts the bot runtime
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = bound_port(site, settings.port)
        base_url = f"http://127.0.0.1:{port}"
        room = app[ROOM_REGISTRY].create(ROOM, teacher_name=TEACHER)
        bot = await app[BOTS].start(
            f"builtin:{ROOM}",
            TEACHER,
            {
                "alert_after_s": args.alert_after,
                "alert_cooldown_s": 120.0,
                "title": "classpulse demo",
            },
        )
        bot_id = bot.bot_id
        if not args.no_console_teacher:
            teacher = SimulatedParticipant(
                base_url, ROOM, TEACHER, teacher_token=room.teacher_token, receive_tiles=False
            )
            await teacher.start()
        names = STUDENT_NAMES[: args.students]
        students = await start_students(base_url, ROOM, names, faces=faces, schedule=DEMO_SCHEDULE)
        print(
            f"classpulse demo: {len(students)} students ({', '.join(names)}) with faces from "
            f"{faces or 'the bundled portrait'}"
        )
        print(f"  teacher view:  {base_url}{room.teacher_path}")
        print(f"  student view:  {base_url}{room.student_path}")
        print(f"  dashboard:     {base_url}/#token={token}  (this run's token)")
        print("  Ctrl-C to end the class.", flush=True)
        await _run_class(stop, args.duration, teacher)
        info = app[BOTS].get(bot_id)
        meeting_id = info.meeting_id if info is not None else None
    finally:
        for student in students:
            await student.stop()
        if teacher is not None:
            await teacher.stop()
        if bot_id is not None:
            with contextlib.suppress(Exception):
                await app[BOTS].stop(bot_id)
        storage = app.get(STORAGE)
        await runner.cleanup()  # stops the runtime: the writer flushes and closes
        if meeting_id and storage is not None:
            print(await asyncio.to_thread(_summary, settings, meeting_id))
    return 0


async def _run_class(stop: asyncio.Event, duration: float | None, teacher: Any) -> None:
    """Wait for Ctrl-C or ``duration``, printing what the teacher is whispered as it arrives."""
    deadline = time.monotonic() + duration if duration is not None else None
    shown = 0
    while not stop.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            break
        if teacher is not None:
            for line in teacher.chat[shown:]:
                if line.get("whisper"):
                    print(f"  [to the teacher] {line.get('text')}", flush=True)
            shown = len(teacher.chat)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


def _summary(settings: Settings, meeting_id: str) -> str:
    """The class summary, its coverage, and where to find the class again."""
    from storage import Storage

    with Storage.open(settings.database_url) as storage:
        text = summary_text(storage, meeting_id)
        coverage = storage.class_coverage(meeting_id)
    share = coverage.share_visible
    seen = (
        f"coverage: {coverage.mean_visible:.1f} of {coverage.mean_present:.1f} students visible "
        f"on average ({share:.0%})"
        if share is not None
        else "coverage: no student was present"
    )
    short = meeting_id[:8]
    return "\n".join(
        [
            text,
            f"  {seen}",
            f'kept as "classpulse demo": classpulse history {short} · classpulse report {short}'
            " · classpulse serve (dashboard)",
        ]
    )
