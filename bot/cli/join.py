"""``classpulse join MEETING_URL --teacher NAME``: the bot in one meeting until it leaves."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from bot.cli.tables import counted
from bot.runtime import BotRuntime, session_settings, validate_meeting_url
from bot.session.settings import MODES
from bot.settings import MODE_ENV, mode_from_env
from storage import Storage

MEETING_URL_HELP = "janus+ws://HOST:8188/?room=1234[&textroom=1234][&pin=..][&textpin=..][&apisecret=..][&token=..]"


def add_join(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "join",
        help="join a meeting and tell the teacher who looks confused or bored",
        description=f"Join a meeting as the classpulse bot. MEETING_URL: {MEETING_URL_HELP}",
    )
    parser.add_argument("meeting_url", metavar="MEETING_URL")
    parser.add_argument(
        "--teacher", required=True, help="the teacher's display name in the meeting"
    )
    parser.add_argument(
        "--teacher-code",
        default=None,
        metavar="CODE",
        help="the secret the teacher whispers to the bot (!claim CODE) to receive the alerts; "
        "default: a new one, printed as 'teacher code: CODE'",
    )
    parser.add_argument("--title", default=None, help="a title for the class in the history")
    parser.add_argument("--bot-name", default="classpulse bot", help="the bot's display name")
    parser.add_argument(
        "--alert-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds of sustained confusion/boredom before an alert (default 25, chosen from data: MODEL_CARD.md)",
    )
    parser.add_argument("--no-bored-alerts", action="store_true", help="alert on confusion only")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="engagement: the emotion model (interested, bored, confused) plus attention; "
        "attention: head direction and eye closure only, no emotion model is loaded "
        f"(recommended for EU institutions; see README). Default ${MODE_ENV}, else engagement",
    )
    parser.add_argument(
        "--database", default=None, help="database URL (default $CLASSPULSE_DATABASE_URL)"
    )
    parser.add_argument("--model", default=None, help="model file (default: shipped weights)")
    parser.set_defaults(handler=run_join)


def join_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"bot_name": args.bot_name}
    if args.title:
        options["title"] = args.title
    if args.alert_after is not None:
        options["alert_after_s"] = args.alert_after
    if args.no_bored_alerts:
        options["alert_bored"] = False
    if args.mode is not None:
        options["mode"] = args.mode
    return options


def run_join(args: argparse.Namespace) -> int:
    validate_meeting_url(args.meeting_url)  # bad input fails before anything starts
    mode_from_env()
    session_settings(args.teacher, join_options(args), args.teacher_code)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return asyncio.run(_join(args))


async def _join(args: argparse.Namespace) -> int:
    from engine.inference import InferenceSettings

    storage = Storage.open(args.database)
    try:
        async with BotRuntime(
            storage, inference=InferenceSettings(model_path=args.model), mode=mode_from_env()
        ) as runtime:
            handle = await runtime.start_bot(
                args.meeting_url, args.teacher, join_options(args), args.teacher_code
            )
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(
                        sig, lambda: asyncio.ensure_future(runtime.stop_bot(handle.id, "Ctrl-C"))
                    )
            settings = handle.session.settings
            print(
                f"classpulse: joining {handle.meeting_url} as {settings.bot_name!r} "
                f"({settings.mode} mode); Ctrl-C to leave",
                flush=True,
            )
            # The teacher whispers "!claim CODE" to the bot in the meeting chat to get the alerts.
            print(f"teacher code: {handle.teacher_code}", flush=True)
            await handle.task
            if handle.error:
                print(f"classpulse join: error: {handle.error}", flush=True)
                return 2
            meeting_id = handle.session.meeting_id
        print(summary_text(storage, meeting_id))
        return 0
    finally:
        storage.close()


def summary_text(storage: Storage, meeting_id: str) -> str:
    """The class summary read back from the database, as a few readable lines."""
    summary = storage.meeting_summary(meeting_id)
    lines = [
        f"class summary ({meeting_id}): {counted(len(summary.students), 'student')}, "
        f"{counted(summary.num_alerts, 'alert')}"
    ]
    for s in summary.students:
        if s.opted_out:
            lines.append(f"  {s.display_name}: opted out")
            continue
        if s.seconds_present > 0:  # the attention mode: no emotion was read
            shares = f"in view {s.share_present:.0%}, no face {s.share_no_face:.0%}"
        else:
            shares = (
                f"interested {s.share_interested:.0%}, bored {s.share_bored:.0%}, "
                f"confused {s.share_confused:.0%}, no face {s.share_no_face:.0%}"
            )
        if s.num_attention_samples:
            shares += (
                f", looking away {s.seconds_looking_away:.0f} s, "
                f"eyes closed {s.seconds_eyes_closed:.0f} s"
            )
        lines.append(
            f"  {s.display_name}: {shares} "
            f"({counted(s.num_samples, 'sample')}, {counted(s.num_alerts, 'alert')})"
        )
    return "\n".join(lines)
