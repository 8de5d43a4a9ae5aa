"""``classpulse db ...``: the teacher's history from the command line (the CLI mounts ``main``).

    classpulse db meetings [--since 2025-09-01] [--until ...] [--teacher T] [--room R]
    classpulse db summary MEETING_ID          classpulse db timeline MEETING_ID [--bucket-s 10]
    classpulse db history "Display Name"      classpulse db alerts MEETING_ID
    classpulse db purge --older-than-days 180 classpulse db forget "Display Name" --yes
    classpulse db upgrade

Every read command prints JSON (or ``--format csv``) to stdout or ``--output PATH``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TextIO

from storage import Storage, UnknownMeetingError, UnknownStudentError
from storage.db import database_url_from_env, parse_database_url, upgrade_database
from storage.export import FORMATS, to_jsonable, write_csv, write_json


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classpulse db", description="Read, export and prune the stored history."
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="database URL (default: $CLASSPULSE_DATABASE_URL, else the per-user SQLite file)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def output_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--format", choices=FORMATS, default="json")
        command.add_argument("--output", metavar="PATH", help="write here instead of stdout")

    meetings = commands.add_parser("meetings", help="meetings that started in a date range")
    meetings.add_argument("--since", type=_when, help="date or ISO time (local unless +hh:mm)")
    meetings.add_argument("--until", type=_when)
    meetings.add_argument("--teacher")
    meetings.add_argument("--room")
    meetings.add_argument("--platform")
    output_options(meetings)

    for name, text in (
        ("summary", "per-student shares, alerts, no-face time"),
        ("alerts", "alerts of a meeting in time order"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("meeting_id")
        output_options(command)

    timeline = commands.add_parser("timeline", help="the class in time buckets")
    timeline.add_argument("meeting_id")
    timeline.add_argument("--bucket-s", type=float, default=10.0)
    output_options(timeline)

    history = commands.add_parser("history", help="one student across meetings")
    history.add_argument("display_name")
    history.add_argument("--since", type=_when)
    history.add_argument("--until", type=_when)
    output_options(history)

    purge = commands.add_parser("purge", help="delete meetings older than an age")
    purge.add_argument("--older-than-days", type=float, required=True)

    forget = commands.add_parser("forget", help="delete every row about one student")
    forget.add_argument("display_name")
    forget.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")

    commands.add_parser("upgrade", help="migrate the database to the newest schema")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Runs one ``classpulse db`` command; returns the exit status (0 ok, 1 not found, 2 usage)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse already printed why
        return int(stop.code or 0)
    environ = os.environ if environ is None else environ
    try:
        url = parse_database_url(args.database) if args.database else database_url_from_env(environ)
        if args.command == "upgrade":
            upgrade_database(url)
            print(f"database {url.render_as_string(hide_password=True)} is up to date", file=stdout)
            return 0
        with Storage.open(url) as storage:
            return _run(storage, args, stdout)
    except (UnknownMeetingError, UnknownStudentError) as error:
        print(f"classpulse db: {error.args[0]}", file=stderr)
        return 1
    except ValueError as error:
        print(f"classpulse db: {error}", file=stderr)
        return 2


def _run(storage: Storage, args: argparse.Namespace, stdout: TextIO) -> int:
    if args.command == "purge":
        purged = storage.purge_older_than(timedelta(days=args.older_than_days))
        _print_json(purged, stdout)
        return 0
    if args.command == "forget":
        if not args.yes:
            raise ValueError(
                "Expected --yes to forget a student (it deletes every row about them). "
                f"Received: forget {args.display_name!r} without --yes"
            )
        _print_json(storage.forget_student(args.display_name), stdout)
        return 0
    result: Any
    if args.command == "meetings":
        result = storage.meetings(
            since=args.since,
            until=args.until,
            teacher=args.teacher,
            room=args.room,
            platform=args.platform,
        )
    elif args.command == "summary":
        result = storage.meeting_summary(args.meeting_id)
    elif args.command == "alerts":
        result = storage.alerts(args.meeting_id)
    elif args.command == "timeline":
        result = storage.class_timeline(args.meeting_id, args.bucket_s)
    else:
        result = storage.student_history(args.display_name, since=args.since, until=args.until)
    write = write_csv if args.format == "csv" else write_json
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            write(result, out)
    else:
        write(result, stdout)
    return 0


def _print_json(value: Any, out: TextIO) -> None:
    write_json(to_jsonable(value), out)


def _when(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"Expected a date or ISO time such as 2025-09-01 or 2025-09-01T08:00+02:00. "
            f"Received: {value!r}"
        ) from None
