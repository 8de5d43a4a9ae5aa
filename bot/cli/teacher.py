"""The teacher's CLI subcommands: ``history``, ``export``, ``purge`` and ``forget-student``.

Each parses its flags, builds ``Settings``, opens the storage and calls one facade method. User
errors are ``ValueError`` (``bot.cli.main`` prints them as one line, exit code 2).
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.cli.confirm import add_confirmation, confirmed
from bot.cli.tables import (
    Table,
    alerts_table,
    cell,
    counted,
    has_attention,
    meetings_table,
    student_table,
    summary_table,
    timeline_table,
    when,
    write_table,
)
from bot.settings import Settings
from bot.web.params import parse_duration, parse_time
from storage import ForgetResult, PurgeResult, Storage, export_to_path, write_csv, write_json

SubParsers = argparse._SubParsersAction  # argparse exposes no public name


def add_history(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "history",
        help="past meetings, one meeting's summary, or one student across meetings",
        description="Without arguments: the meetings (filter with --since, --until, --teacher, "
        "--room). "
        "With a MEETING id: its summary per student (or --timeline, --alerts). With --student "
        "NAME: that student in every meeting. A readable table, or --json / --csv.",
    )
    parser.add_argument(
        "meeting",
        nargs="?",
        metavar="MEETING",
        help="a meeting id from the list, or its first 6 or more digits",
    )
    parser.add_argument(
        "--student",
        metavar="NAME",
        help="one student (display name, any case) across meetings",
    )
    parser.add_argument(
        "--timeline",
        nargs="?",
        const="1m",
        metavar="BUCKET",
        help="with MEETING: the class timeline in buckets (default 1m; e.g. 10s, 5m)",
    )
    parser.add_argument("--alerts", action="store_true", help="with MEETING: the alerts sent")
    _add_filters(parser)
    _add_output(parser)
    add_database(parser)
    parser.set_defaults(handler=run_history)


def add_export(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write history to a CSV or JSON file",
        description="Writes the meetings list, one meeting (summary, timeline or alerts) or one "
        "student's history to OUTPUT (.csv or .json, or '-' for standard output with --format).",
    )
    parser.add_argument("output", metavar="OUTPUT", help="file to write (.csv / .json), or '-'")
    parser.add_argument("--meeting", metavar="ID", help="one meeting (id or a unique prefix)")
    parser.add_argument(
        "--what",
        choices=("summary", "timeline", "alerts"),
        default="summary",
        help="with --meeting: which view (default summary)",
    )
    parser.add_argument("--bucket", default="1m", help="with --what timeline: bucket length")
    parser.add_argument("--student", metavar="NAME", help="one student across meetings")
    parser.add_argument("--format", choices=("csv", "json"), help="default: from OUTPUT's suffix")
    _add_filters(parser)
    add_database(parser)
    parser.set_defaults(handler=run_export)


def add_purge(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "purge",
        help="delete meetings older than an age (retention)",
        description="Deletes every meeting that ended more than AGE ago, with all its data.",
    )
    parser.add_argument(
        "--older-than",
        required=True,
        metavar="AGE",
        help="e.g. 180d, 12w, 36h (a bare number is days)",
    )
    add_confirmation(parser)
    add_database(parser)
    parser.set_defaults(handler=run_purge)


def add_forget_student(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "forget-student",
        help="delete everything about one student in every meeting",
        description="Deletes the participant rows of NAME (display name) in every meeting — and "
        "of the other faces seen on that camera ('NAME (2)') and of others who joined under the "
        "name ('NAME #2') — with their samples, state changes, alerts and consent events.",
    )
    parser.add_argument("name", metavar="NAME", help="the student's display name, exactly")
    add_confirmation(parser)
    add_database(parser)
    parser.set_defaults(handler=run_forget_student)


#: Registered by ``bot.cli._subcommands``.
TEACHER_SUBCOMMANDS: list[Callable[[SubParsers], None]] = [
    add_history,
    add_export,
    add_purge,
    add_forget_student,
]


# -- handlers -----------------------------------------------------------------------------


def run_history(args: argparse.Namespace) -> int:
    if args.meeting and args.student:
        raise ValueError("Expected a MEETING id or --student NAME, not both. Received: both")
    if (args.timeline or args.alerts) and not args.meeting:
        raise ValueError("Expected a MEETING id with --timeline / --alerts. Received: none")
    with open_storage(args) as storage:
        value, table = _history_view(storage, args)
    write_table(value, table, sys.stdout, "json" if args.json else "csv" if args.csv else "table")
    return 0


def run_export(args: argparse.Namespace) -> int:
    if args.meeting and args.student:
        raise ValueError("Expected --meeting or --student, not both. Received: both")
    if args.output == "-" and not args.format:
        raise ValueError(
            "Expected --format csv or --format json when writing to '-'. Received: none"
        )
    args.timeline = args.bucket if args.what == "timeline" else None
    args.alerts = args.what == "alerts"
    with open_storage(args) as storage:
        value, _ = _history_view(storage, args)
    if args.output == "-":
        (write_csv if args.format == "csv" else write_json)(value, sys.stdout)
        return 0
    if isinstance(value, list) and not value:
        print(f"nothing to export ({_nothing(args)}): {args.output} not written")
        return 0
    path = export_to_path(value, Path(args.output), args.format)
    print(f"wrote {path}")
    return 0


def _nothing(args: argparse.Namespace) -> str:
    """What an empty export is empty of, in words."""
    filtered = any(getattr(args, name) for name in ("since", "until", "teacher", "room"))
    if args.student:
        return f"no meetings of {cell(args.student)}" + (" in that window" if filtered else "")
    if args.meeting:
        return "no alerts in that meeting" if args.alerts else "no samples in that meeting"
    return "no meetings match the filters" if filtered else "no meetings stored"


def run_purge(args: argparse.Namespace) -> int:
    age_s = parse_duration(args.older_than, default_unit="d", name="--older-than")
    with open_storage(args) as storage:
        preview = storage.purge_older_than(age_s, dry_run=True)
        if not confirmed(args, _purged(preview)):
            return 0
        result = storage.purge_older_than(age_s)
    print(f"deleted {_purged(result)}")
    return 0


def _purged(result: PurgeResult) -> str:
    return (
        f"{counted(result.num_meetings, 'meeting')} that ended before {when(result.cutoff)} "
        f"({counted(result.num_participants, 'participant')}, "
        f"{counted(result.num_samples, 'sample')})"
    )


def _forgotten(result: ForgetResult) -> str:
    return (
        f"{cell(result.display_name)}: {counted(result.num_participants, 'participant row')} in "
        f"{counted(result.num_meetings, 'meeting')}, {counted(result.num_samples, 'sample')}, "
        f"{counted(result.num_state_changes, 'state change')}, "
        f"{counted(result.num_alerts, 'alert')}, "
        f"{counted(result.num_consent_events, 'consent event')}"
    )


def run_forget_student(args: argparse.Namespace) -> int:
    name = unicodedata.normalize("NFC", args.name)
    with open_storage(args) as storage:
        try:
            preview = storage.forget_student(name, dry_run=True)
            if not confirmed(args, _forgotten(preview)):
                return 0
            result = storage.forget_student(name)
        except LookupError as error:
            raise ValueError(str(error)) from None
    print(f"forgot {_forgotten(result)}")
    return 0


# -- views --------------------------------------------------------------------------------


def _history_view(storage: Storage, args: argparse.Namespace) -> tuple[Any, Table]:
    """The result to export and its table, for the view the flags name."""
    window: dict[str, Any] = {
        name: parse_time(getattr(args, name), name=f"--{name}")
        for name in ("since", "until")
        if getattr(args, name)
    }
    try:
        # What was typed (a meeting id prefix, a name in another case) → the stored value.
        if args.meeting:
            args.meeting = storage.find_meeting_id(args.meeting)
        if args.student:
            args.student = storage.find_student(args.student)
            history = storage.student_history(args.student, **window)
            return history, student_table(history)
        if args.meeting and args.timeline:
            bucket_s = parse_duration(args.timeline, min_s=0.5, max_s=86400, name="bucket")
            buckets = storage.class_timeline(args.meeting, bucket_s)
            # A bucket's shares cannot tell "no reading" from "never away": the summary can.
            readings = has_attention(storage.meeting_summary(args.meeting).students)
            return buckets, timeline_table(buckets, attention=readings)
        if args.meeting and args.alerts:
            alerts = storage.alerts(args.meeting)
            return alerts, alerts_table(alerts)
        if args.meeting:
            summary = storage.meeting_summary(args.meeting)
            return summary, summary_table(summary)
    except LookupError as error:  # unknown meeting or student
        raise ValueError(str(error)) from None
    meetings = storage.meetings(teacher=args.teacher, room=args.room, **window)
    return meetings, meetings_table(meetings)


# -- shared flags -------------------------------------------------------------------------


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", help="meetings started at or after (2026-03-01, 2026-03-01T09:00)"
    )
    parser.add_argument("--until", help="meetings started before")
    parser.add_argument("--teacher", help="only this teacher's meetings")
    parser.add_argument("--room", help="only meetings in this room")


def _add_output(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="JSON instead of a table")
    group.add_argument("--csv", action="store_true", help="CSV instead of a table")


def add_database(parser: argparse.ArgumentParser) -> None:
    """``--database-url``, as every command that reads the history takes it."""
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: $CLASSPULSE_DATABASE_URL, else SQLite in the data dir)",
    )


@contextmanager
def open_storage(args: argparse.Namespace) -> Iterator[Storage]:
    """The storage ``--database-url`` (``add_database``) names, else the settings' default."""
    settings = Settings.from_env(database_url=args.database_url)
    with Storage.open(settings.database_url) as storage:
        yield storage
