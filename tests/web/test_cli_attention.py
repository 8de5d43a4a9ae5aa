"""``classpulse history`` with attention readings, in-process through ``bot.cli.main`` on a
temp-file SQLite database filled by the real writer: an attention-only class shows ``present``
and no emotion columns, readings add looking-away / eyes-closed columns, a class without readings
keeps exactly the columns it always had, and ``--json`` / ``--csv`` carry the fields."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bot.cli import main
from bot.settings import Settings
from engine.types import EngagementState as S
from storage import MeetingClosed, MeetingOpened, ParticipantJoined, Sample, Writer
from tests.web.conftest import SEED, Seeded, _utc

ATTENTION_ID = "attention-cli-0316"
MIXED_ID = "landmarks-cli-0317"


def _seed_attention_class(writer: Writer) -> None:
    """The attention mode (scores NULL): Aiko 60 s in view, eyes closed from 0:45; Ben in view
    40 s, turned away from 0:20, then his camera shows no face for 20 s; Cleo never sampled."""
    t0 = _utc("2026-03-16T09:00:00")
    writer.submit(MeetingOpened(ATTENTION_ID, "builtin", "demo", t0, title="Attention only"))
    for name in ("Aiko", "Ben", "Cleo"):
        writer.submit(ParticipantJoined(ATTENTION_ID, name, t0))
    for second in range(60):
        closed = second >= 45
        writer.submit(
            Sample(
                ATTENTION_ID, "Aiko", t0 + second + 0.5, S.PRESENT, True,
                yaw=3.0, pitch=0.0, eyes_open=not closed, looking_away=False,
            )
        )  # fmt: skip
        face = second < 40
        away = 20 <= second < 40
        writer.submit(
            Sample(
                ATTENTION_ID, "Ben", t0 + second + 0.5, S.PRESENT if face else S.NO_FACE, face,
                yaw=(45.0 if away else 1.0) if face else None, pitch=0.0 if face else None,
                eyes_open=True if face else None, looking_away=away if face else None,
            )
        )  # fmt: skip
    writer.submit(MeetingClosed(ATTENTION_ID, t0 + 60))


def _seed_engagement_with_readings(writer: Writer) -> None:
    """The engagement mode on the landmark stage: scores and readings; Ana turned away 0:10–0:30."""
    t0 = _utc("2026-03-17T09:00:00")
    writer.submit(MeetingOpened(MIXED_ID, "janus", "1234", t0, title="Landmarks"))
    writer.submit(ParticipantJoined(MIXED_ID, "Ana", t0))
    for second in range(40):
        away = 10 <= second < 30
        writer.submit(
            Sample(
                MIXED_ID, "Ana", t0 + second + 0.5, S.INTERESTED, True, 0.7, 0.2, 0.1,
                yaw=50.0 if away else 0.0, pitch=0.0, eyes_open=True, looking_away=away,
            )
        )  # fmt: skip
    writer.submit(MeetingClosed(MIXED_ID, t0 + 40))


@pytest.fixture
def attention_db(settings: Settings, seeded: Seeded, writer: Writer) -> tuple[str, str]:
    _seed_attention_class(writer)
    _seed_engagement_with_readings(writer)
    assert writer.flush(timeout_s=30)
    assert writer.stats().rejected == 0
    return ("--database-url", settings.database_url)


def _table(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[list[str], list[str]]:
    """The header's column names (split on two spaces) and the body lines of a table."""
    assert main(list(argv)) == 0
    lines = capsys.readouterr().out.splitlines()
    header = [cell.strip() for cell in lines[0].split("  ") if cell.strip()]
    return header, lines[2:]


def _row(lines: list[str], start: str) -> str:
    return next(line for line in lines if line.startswith(start))


def test_attention_only_summary_shows_present_and_attention_not_emotions(
    capsys: pytest.CaptureFixture[str], attention_db: tuple[str, str]
) -> None:
    header, lines = _table(capsys, "history", ATTENTION_ID, *attention_db)
    assert header == ["student", "present", "no face", "looking away", "eyes closed", "alerts"]
    assert _row(lines, "Aiko").split()[1:] == ["1:00", "100%", "0:00", "0%", "0:00", "0%",
                                               "0:15", "25%", "0"]  # fmt: skip
    # Ben: 40 s in view of 60, turned away 20 of his 40 readings.
    assert _row(lines, "Ben").split()[1:] == ["0:40", "67%", "0:20", "33%", "0:20", "50%",
                                              "0:00", "0%", "0"]  # fmt: skip
    # Cleo has no reading: "–", not a misleading 0:00.
    assert _row(lines, "Cleo").split()[1:] == ["0:00", "0%", "0:00", "0%", "–", "–", "0"]


def test_readings_add_columns_and_a_class_without_them_keeps_its_columns(
    capsys: pytest.CaptureFixture[str], attention_db: tuple[str, str]
) -> None:
    header, lines = _table(capsys, "history", MIXED_ID, *attention_db)
    assert header == [
        "student", "interested", "bored", "confused", "no face",
        "looking away", "eyes closed", "alerts",
    ]  # fmt: skip
    assert "0:20  50%" in _row(lines, "Ana")  # looking away 20 of 40 readings

    header, _ = _table(capsys, "history", SEED.algebra.meeting_id, *attention_db)
    assert header == ["student", "interested", "bored", "confused", "no face", "alerts"]
    header, _ = _table(capsys, "history", SEED.algebra.meeting_id, "--timeline", *attention_db)
    assert header == ["from", "people", "interested", "bored", "confused", "no face"]
    header, _ = _table(capsys, "history", "--student", "Dan", *attention_db)
    assert header == [
        "started", "meeting", "title", "teacher",
        "interested", "bored", "confused", "no face", "alerts",
    ]  # fmt: skip


def test_attention_timeline_and_a_student_across_both_modes(
    capsys: pytest.CaptureFixture[str], attention_db: tuple[str, str]
) -> None:
    header, lines = _table(capsys, "history", ATTENTION_ID, "--timeline", "20s", *attention_db)
    assert header == ["from", "people", "present", "no face", "looking away", "eyes closed"]
    assert [line.split() for line in lines] == [
        ["0:00", "2", "100%", "0%", "0%", "0%"],
        ["0:20", "2", "100%", "0%", "50%", "0%"],  # Ben away the whole bucket
        ["0:40", "2", "50%", "50%", "0%", "38%"],  # Aiko's eyes closed 15 of 40 samples
    ]

    # Ben in an engagement class (no readings) and in the attention-only one: both kinds of
    # column, "–" where a meeting read nothing of that kind.
    header, lines = _table(capsys, "history", "--student", "Ben", *attention_db)
    assert header[4:] == [
        "interested", "bored", "confused", "present", "no face",
        "looking away", "eyes closed", "alerts",
    ]  # fmt: skip
    algebra = _row(lines, "2026-03-02").split()
    attention = _row(lines, "2026-03-16").split()
    assert algebra[-4:] == ["0:10", "–", "–", "0"]  # no face 10 s, no readings
    assert attention[-8:] == ["–", "–", "–", "0:40", "0:20", "0:20", "0:00", "0"]


def test_json_and_csv_carry_the_attention_fields(
    capsys: pytest.CaptureFixture[str], attention_db: tuple[str, str]
) -> None:
    assert main(["history", ATTENTION_ID, *attention_db, "--json"]) == 0
    students = {s["display_name"]: s for s in json.loads(capsys.readouterr().out)["students"]}
    ben = students["Ben"]
    assert (ben["seconds_present"], ben["share_present"]) == (40.0, pytest.approx(2 / 3))
    assert (ben["seconds_looking_away"], ben["seconds_eyes_closed"]) == (20.0, 0.0)
    assert (ben["num_attention_samples"], students["Cleo"]["num_attention_samples"]) == (40, 0)
    assert ben["seconds_interested"] == 0.0

    assert main(["history", ATTENTION_ID, *attention_db, "--csv"]) == 0
    rows = {r["students.display_name"]: r for r in csv.DictReader(io.StringIO(
        capsys.readouterr().out))}  # fmt: skip
    assert rows["Aiko"]["students.seconds_eyes_closed"] == "15.0"
    assert rows["Ben"]["students.num_attention_samples"] == "40"

    assert main(["history", ATTENTION_ID, *attention_db, "--timeline", "20s", "--csv"]) == 0
    buckets = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [b["share_looking_away"] for b in buckets] == ["0.0", "0.5", "0.0"]
    assert [b["share_present"] for b in buckets] == ["1.0", "1.0", "0.5"]
