"""The teacher's CLI subcommands: ``history``, ``export``, ``purge`` and ``forget-student``.

Each parses its flags, builds ``Settings``, opens the storage and calls one facade method. User
errors are ``ValueError`` (``bot.cli.main`` prints them as one line, exit code 2).
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.cli_confirm import add_confirmation, confirmed
from bot.settings import Settings
from bot.web.params import parse_duration, parse_time
from storage import (
    AlertInfo,
    ForgetResult,
    MeetingInfo,
    MeetingSummary,
    Storage,
    StudentMeeting,
    TimelineBucket,
    export_to_path,
    write_csv,
    write_json,
)

SubParsers = argparse._SubParsersAction  # argparse exposes no public name
STATES = ("interested", "bored", "confused", "no_face")


def add_history(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "history",
        help="past meetings, one meeting's summary, or one student across meetings",
        description="Without arguments: the meetings (filter with --since, --until, --teacher, "
        "--room). "
        "With a MEETING id: its summary per student (or --timeline, --alerts). With --student "
        "NAME: that student in every meeting. A readable table, or --json / --csv.",
    )
    parser.add_argument("meeting", nargs="?", metavar="MEETING", help="a meeting id from the list")
    parser.add_argument(
        "--student", metavar="NAME", help="one student (display name) across meetings"
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
    _add_database(parser)
    parser.set_defaults(handler=run_history)


def add_export(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write history to a CSV or JSON file",
        description="Writes the meetings list, one meeting (summary, timeline or alerts) or one "
        "student's history to OUTPUT (.csv or .json, or '-' for standard output with --format).",
    )
    parser.add_argument("output", metavar="OUTPUT", help="file to write (.csv / .json), or '-'")
    parser.add_argument("--meeting", metavar="ID", help="one meeting")
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
    _add_database(parser)
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
    _add_database(parser)
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
    _add_database(parser)
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
    with _storage(args) as storage:
        value, table = _history_view(storage, args)
    _write(value, table, sys.stdout, "json" if args.json else "csv" if args.csv else "table")
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
    with _storage(args) as storage:
        value, _ = _history_view(storage, args)
    if args.output == "-":
        (write_csv if args.format == "csv" else write_json)(value, sys.stdout)
        return 0
    path = export_to_path(value, Path(args.output), args.format)
    print(f"wrote {path}")
    return 0


def run_purge(args: argparse.Namespace) -> int:
    age_s = parse_duration(args.older_than, default_unit="d", name="--older-than")
    with _storage(args) as storage:
        preview = storage.purge_older_than(age_s, dry_run=True)
        what = (
            f"{preview.num_meetings} meetings that ended before {_when(preview.cutoff)} "
            f"({preview.num_participants} participants, {preview.num_samples} samples)"
        )
        if not confirmed(args, what):
            return 0
        result = storage.purge_older_than(age_s)
    print(
        f"deleted {result.num_meetings} meetings that ended before {_when(result.cutoff)} "
        f"({result.num_participants} participants, {result.num_samples} samples)"
    )
    return 0


def _forgotten(result: ForgetResult) -> str:
    return (
        f"{_cell(result.display_name)}: {result.num_participants} participant rows in "
        f"{result.num_meetings} meetings, {result.num_samples} samples, {result.num_state_changes} "
        f"state changes, {result.num_alerts} alerts, {result.num_consent_events} consent events"
    )


def run_forget_student(args: argparse.Namespace) -> int:
    name = unicodedata.normalize("NFC", args.name)
    with _storage(args) as storage:
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

Table = tuple[list[str], list[list[str]]]


def _history_view(storage: Storage, args: argparse.Namespace) -> tuple[Any, Table]:
    """The result to export and its table, for the view the flags name."""
    window: dict[str, Any] = {
        name: parse_time(getattr(args, name), name=f"--{name}")
        for name in ("since", "until")
        if getattr(args, name)
    }
    try:
        if args.student:
            history = storage.student_history(args.student, **window)
            return history, _student_table(history)
        if args.meeting and args.timeline:
            bucket_s = parse_duration(args.timeline, min_s=0.5, max_s=86400, name="bucket")
            buckets = storage.class_timeline(args.meeting, bucket_s)
            return buckets, _timeline_table(buckets)
        if args.meeting and args.alerts:
            alerts = storage.alerts(args.meeting)
            return alerts, _alerts_table(alerts)
        if args.meeting:
            summary = storage.meeting_summary(args.meeting)
            return summary, _summary_table(summary)
    except LookupError as error:  # unknown meeting or student
        raise ValueError(str(error)) from None
    meetings = storage.meetings(teacher=args.teacher, room=args.room, **window)
    return meetings, _meetings_table(meetings)


def _meetings_table(meetings: Sequence[MeetingInfo]) -> Table:
    header = ["meeting", "started", "length", "title", "teacher", "room", "students"]
    rows = [
        [
            m.meeting_id,
            _when(m.started_at),
            _length(m),
            m.title or "",
            m.teacher or "",
            m.room,
            str(m.num_participants),
        ]
        for m in meetings
    ]
    return header, rows


def _summary_table(summary: MeetingSummary) -> Table:
    header = ["student", *(s.replace("_", " ") for s in STATES), "alerts"]
    rows = [
        [
            s.display_name + (" (opted out)" if s.opted_out else ""),
            *(
                f"{_minutes(getattr(s, f'seconds_{state}'))} {getattr(s, f'share_{state}'):4.0%}"
                for state in STATES
            ),
            str(s.num_alerts),
        ]
        for s in summary.students
    ]
    return header, rows


def _student_table(history: Sequence[StudentMeeting]) -> Table:
    header = [
        "started",
        "meeting",
        "title",
        "teacher",
        *(s.replace("_", " ") for s in STATES),
        "alerts",
    ]
    rows = [
        [
            _when(entry.meeting.started_at),
            entry.meeting.meeting_id,
            entry.meeting.title or "",
            entry.meeting.teacher or "",
            *(_minutes(getattr(entry.student, f"seconds_{state}")) for state in STATES),
            str(entry.student.num_alerts),
        ]
        for entry in history
    ]
    return header, rows


def _timeline_table(buckets: Sequence[TimelineBucket]) -> Table:
    header = ["from", "people", *(s.replace("_", " ") for s in STATES)]
    rows = [
        [
            _minutes(b.start_s),
            str(b.num_people),
            *(f"{getattr(b, f'share_{s}'):.0%}" for s in STATES),
        ]
        for b in buckets
    ]
    return header, rows


def _alerts_table(alerts: Sequence[AlertInfo]) -> Table:
    header = ["time", "kind", "student", "delivered", "text"]
    rows = [
        [
            _when(a.t, seconds=True),
            a.kind,
            a.display_name or "(class)",
            "yes" if a.delivered else "no",
            a.text,
        ]
        for a in alerts
    ]
    return header, rows


# -- output -------------------------------------------------------------------------------


def _write(value: Any, table: Table, out: TextIO, form: str) -> None:
    if form == "json":
        write_json(value, out)
    elif form == "csv":
        write_csv(value, out)
    else:
        header, rows = table
        if not rows:
            print("(nothing)", file=out)
            return
        cells = [[_cell(text) for text in row] for row in [header, *rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for index, row in enumerate(cells):
            print(
                "  ".join(
                    text.ljust(width) for text, width in zip(row, widths, strict=True)
                ).rstrip(),
                file=out,
            )
            if index == 0:
                print("  ".join("-" * width for width in widths), file=out)


def _cell(text: str, limit: int = 60) -> str:
    """Display names come from students: no control characters (terminal escapes) reach the
    teacher's terminal, and very long names are cut."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _when(moment: datetime, *, seconds: bool = False) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _minutes(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"


def _length(meeting: MeetingInfo) -> str:
    if meeting.ended_at is None:
        return "running"
    return _minutes((meeting.ended_at - meeting.started_at).total_seconds())


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


def _add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: $CLASSPULSE_DATABASE_URL, else SQLite in the data dir)",
    )


@contextmanager
def _storage(args: argparse.Namespace) -> Iterator[Storage]:
    settings = Settings.from_env(database_url=args.database_url)
    with Storage.open(settings.database_url) as storage:
        yield storage
