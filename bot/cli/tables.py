"""How the teacher's CLI shows history: tables of meetings, summaries, timelines and alerts,
and counted nouns ("1 alert", "2 alerts")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from storage import (
    AlertInfo,
    MeetingInfo,
    MeetingSummary,
    StudentMeeting,
    StudentSummary,
    TimelineBucket,
    write_csv,
    write_json,
)

STATES = ("interested", "bored", "confused", "no_face")
EMOTIONS = ("interested", "bored", "confused")
#: The attention readings (the landmark face stage): time with the head turned away, eyes closed.
ATTENTION = ("looking_away", "eyes_closed")
Table = tuple[list[str], list[list[str]]]


def shown_states(students: Iterable[StudentSummary]) -> tuple[str, ...]:
    """The state columns a table needs: the emotions unless no emotion was read (the attention
    mode stores only ``present`` and ``no_face``, so three empty columns would mislead),
    ``present`` when some samples are, and always ``no_face``. A meeting of the engagement
    mode keeps exactly ``STATES``."""
    students = list(students)
    present = any(s.seconds_present for s in students)
    emotions = not present or any(
        s.seconds_interested + s.seconds_bored + s.seconds_confused for s in students
    )
    return (*(EMOTIONS if emotions else ()), *(("present",) if present else ()), "no_face")


def has_attention(students: Iterable[StudentSummary]) -> bool:
    """Whether any sample carries an attention reading (the Haar face stage reads none)."""
    return any(s.num_attention_samples for s in students)


def _label(name: str) -> str:
    return name.replace("_", " ")


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
    """Per student: time and share in each state, then (with attention readings) time and share
    of the readings looking away / with the eyes closed ("–": that student has no reading)."""
    states = shown_states(summary.students)
    attention = ATTENTION if has_attention(summary.students) else ()
    period_s = summary.meeting.sample_period_s
    header = ["student", *map(_label, states), *map(_label, attention), "alerts"]
    rows = [
        [
            s.display_name + (" (opted out)" if s.opted_out else ""),
            *(
                f"{minutes(getattr(s, f'seconds_{state}'))} {getattr(s, f'share_{state}'):4.0%}"
                for state in states
            ),
            *(_attention_cell(s, signal, period_s) for signal in attention),
            str(s.num_alerts),
        ]
        for s in summary.students
    ]
    return header, rows


def _attention_cell(student: StudentSummary, signal: str, period_s: float) -> str:
    if not student.num_attention_samples:
        return "–"
    seconds = getattr(student, f"seconds_{signal}")
    read_s = student.num_attention_samples * period_s
    return f"{minutes(seconds)} {seconds / read_s if read_s else 0.0:4.0%}"


def student_table(history: Sequence[StudentMeeting]) -> Table:
    """One row per meeting; the columns are the union over the meetings (an attention-mode
    class beside engagement ones shows both, its emotion cells empty as "–")."""
    students = [entry.student for entry in history]
    states = shown_states(students)
    attention = ATTENTION if has_attention(students) else ()
    header = [
        "started",
        "meeting",
        "title",
        "teacher",
        *map(_label, states),
        *map(_label, attention),
        "alerts",
    ]
    rows = [
        [
            when(entry.meeting.started_at),
            entry.meeting.meeting_id,
            entry.meeting.title or "",
            entry.meeting.teacher or "",
            *(_state_minutes(entry.student, state) for state in states),
            *(
                minutes(getattr(entry.student, f"seconds_{signal}"))
                if entry.student.num_attention_samples
                else "–"
                for signal in attention
            ),
            str(entry.student.num_alerts),
        ]
        for entry in history
    ]
    return header, rows


def _state_minutes(student: StudentSummary, state: str) -> str:
    """An emotion in a meeting where none was read (the attention mode) is "–", not 0:00."""
    emotions = student.seconds_interested + student.seconds_bored + student.seconds_confused
    if state in EMOTIONS and student.seconds_present and not emotions:
        return "–"
    return minutes(getattr(student, f"seconds_{state}"))


def timeline_table(buckets: Sequence[TimelineBucket], *, attention: bool | None = None) -> Table:
    """The class per bucket: shares of the samples in each state and, with attention readings
    (``attention``; ``None``: any bucket has a share looking away or with the eyes closed), the
    shares looking away / with the eyes closed."""
    present = any(b.share_present for b in buckets)
    emotions = not present or any(
        b.share_interested + b.share_bored + b.share_confused for b in buckets
    )
    states = (*(EMOTIONS if emotions else ()), *(("present",) if present else ()), "no_face")
    if attention is None:
        attention = any(b.share_looking_away + b.share_eyes_closed for b in buckets)
    signals = ATTENTION if attention else ()
    header = ["from", "people", *map(_label, states), *map(_label, signals)]
    rows = [
        [
            minutes(b.start_s),
            str(b.num_people),
            *(f"{getattr(b, f'share_{s}'):.0%}" for s in (*states, *signals)),
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
