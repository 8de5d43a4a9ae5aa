"""How the teacher's CLI shows history: tables of meetings, summaries, timelines and alerts,
and counted nouns ("1 alert", "2 alerts")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from storage import (
    AlertInfo,
    MeetingInfo,
    MeetingSummary,
    StudentMeeting,
    TimelineBucket,
    write_csv,
    write_json,
)

STATES = ("interested", "bored", "confused", "no_face")
Table = tuple[list[str], list[list[str]]]


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``counted(1, "alert")`` → ``"1 alert"``; ``counted(2, "alert")`` → ``"2 alerts"``."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def meetings_table(meetings: Sequence[MeetingInfo]) -> Table:
    header = ["meeting", "started", "length", "title", "teacher", "room", "students"]
    rows = [
        [
            m.meeting_id,
            when(m.started_at),
            length(m),
            m.title or "",
            m.teacher or "",
            m.room,
            str(m.num_participants),
        ]
        for m in meetings
    ]
    return header, rows


def summary_table(summary: MeetingSummary) -> Table:
    header = ["student", *(s.replace("_", " ") for s in STATES), "alerts"]
    rows = [
        [
            s.display_name + (" (opted out)" if s.opted_out else ""),
            *(
                f"{minutes(getattr(s, f'seconds_{state}'))} {getattr(s, f'share_{state}'):4.0%}"
                for state in STATES
            ),
            str(s.num_alerts),
        ]
        for s in summary.students
    ]
    return header, rows


def student_table(history: Sequence[StudentMeeting]) -> Table:
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
            when(entry.meeting.started_at),
            entry.meeting.meeting_id,
            entry.meeting.title or "",
            entry.meeting.teacher or "",
            *(minutes(getattr(entry.student, f"seconds_{state}")) for state in STATES),
            str(entry.student.num_alerts),
        ]
        for entry in history
    ]
    return header, rows


def timeline_table(buckets: Sequence[TimelineBucket]) -> Table:
    header = ["from", "people", *(s.replace("_", " ") for s in STATES)]
    rows = [
        [
            minutes(b.start_s),
            str(b.num_people),
            *(f"{getattr(b, f'share_{s}'):.0%}" for s in STATES),
        ]
        for b in buckets
    ]
    return header, rows


def alerts_table(alerts: Sequence[AlertInfo]) -> Table:
    header = ["time", "kind", "student", "delivered", "text"]
    rows = [
        [
            when(a.t, seconds=True),
            a.kind,
            a.display_name or "(class)",
            "yes" if a.delivered else "no",
            a.text,
        ]
        for a in alerts
    ]
    return header, rows


def write_table(value: Any, table: Table, out: TextIO, form: str) -> None:
    if form == "json":
        write_json(value, out)
    elif form == "csv":
        write_csv(value, out)
    else:
        header, rows = table
        if not rows:
            print("(nothing)", file=out)
            return
        cells = [[cell(text) for text in row] for row in [header, *rows]]
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


def cell(text: str, limit: int = 60) -> str:
    """Display names come from students: no control characters (terminal escapes) reach the
    teacher's terminal, and very long names are cut."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def when(moment: datetime, *, seconds: bool = False) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def minutes(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"


def length(meeting: MeetingInfo) -> str:
    if meeting.ended_at is None:
        return "running"
    return minutes((meeting.ended_at - meeting.started_at).total_seconds())
