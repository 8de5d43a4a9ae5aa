"""``classpulse report MEETING [-o FILE.html]``: the post-class report as one printable HTML page.

Without ``-o`` the page goes to ``report-<first 8 digits of the id>.html`` in the current folder
(a page on a terminal helps nobody); ``-o -`` writes it to standard output for a pipe.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.teacher import add_database, open_storage

SubParsers = argparse._SubParsersAction  # argparse exposes no public name


def add_report(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="a printable HTML report of one meeting (coverage, curve, lanes, alerts)",
        description="Writes one self-contained HTML page about MEETING: title, date, coverage, "
        "the class over time, a lane per student, time per state, alerts with times and the "
        "model's limits. Open it in a browser and print it (or save it as PDF).",
    )
    parser.add_argument(
        "meeting", metavar="MEETING", help="a meeting id, or its first 6 or more digits"
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE.html",
        default=None,
        help="where to write it ('-' for standard output; default report-ID.html here)",
    )
    add_database(parser)
    parser.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    from bot.report import load_report, render_report

    with open_storage(args) as storage:
        meeting_id = storage.find_meeting_id(args.meeting)
        page = render_report(load_report(storage, meeting_id))
    if args.output == "-":
        sys.stdout.write(page)
        return 0
    path = Path(args.output or f"report-{meeting_id[:8]}.html")
    if path.is_dir():
        raise ValueError(f"Expected a file name for -o, not a folder. Received: {path}")
    path.write_text(page, encoding="utf-8")
    print(f"wrote {path} (open it in a browser to read or print it)")
    return 0
