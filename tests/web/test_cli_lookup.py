"""The teacher's CLI as typed by people: meeting id prefixes, names in any case, counted nouns,
an empty export, and a reader that goes away (``| head``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.join import summary_text
from bot.settings import Settings
from storage import Storage, Writer
from tests.web.conftest import HOSTILE_NAME, SEED, Seeded, seed_meeting

ROOT = Path(__file__).resolve().parents[2]
FIRST = "abcdef01" + "0" * 24
SECOND = "abcdef02" + "0" * 24


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def hex_meetings(writer: Writer, seeded: Seeded) -> tuple[str, str]:
    """Two more meetings with real-looking ids that share their first six digits."""
    seed_meeting(writer, replace(SEED.geometry, meeting_id=FIRST, title="Chemistry"))
    seed_meeting(writer, replace(SEED.geometry, meeting_id=SECOND, title="Biology"))
    assert writer.flush(timeout_s=30)
    return FIRST, SECOND


def test_a_unique_meeting_id_prefix_is_enough(
    capsys: pytest.CaptureFixture[str], settings: Settings, hex_meetings: tuple[str, str]
) -> None:
    db = ("--database-url", settings.database_url)
    code, out, err = run(capsys, "history", "abcdef01", *db, "--json")
    assert code == 0, err
    assert json.loads(out)["meeting"]["meeting_id"] == FIRST
    code, out, err = run(capsys, "history", "ABCDEF02", *db, "--alerts", "--json")
    assert code == 0, err
    code, out, err = run(capsys, "history", FIRST, *db)
    assert code == 0 and "Ana" in out
    code, out, err = run(capsys, "history", SEED.algebra.meeting_id, *db)
    assert code == 0 and "Ana" in out  # any stored id, hex or not, works whole


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("abcdef", "2 meetings start with 'abcdef'"),
        ("abc", "at least 6 hex digits"),
        ("abcdef09", "none starts with 'abcdef09'"),
        ("algebra", "at least 6 hex digits"),
    ],
)
def test_a_meeting_id_that_names_no_single_meeting_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    hex_meetings: tuple[str, str],
    typed: str,
    expected: str,
) -> None:
    code, out, err = run(capsys, "history", typed, "--database-url", settings.database_url)
    assert code == 2 and out == ""
    assert expected in err
    assert err.rstrip().endswith(f"Received: {typed!r}")
    assert len(err.strip().splitlines()) == 1


def test_export_takes_a_meeting_id_prefix(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    hex_meetings: tuple[str, str],
    tmp_path: Path,
) -> None:
    out_file = tmp_path / "first.json"
    db = ("--database-url", settings.database_url)
    code, _, err = run(capsys, "export", str(out_file), "--meeting", "abcdef01", *db)
    assert code == 0, err
    assert json.loads(out_file.read_text())["meeting"]["meeting_id"] == FIRST


@pytest.mark.parametrize("typed", ["ana", "ANA", "aNa"])
def test_student_names_are_found_in_any_case(
    capsys: pytest.CaptureFixture[str], settings: Settings, seeded: Seeded, typed: str
) -> None:
    code, out, err = run(
        capsys, "history", "--student", typed, "--database-url", settings.database_url, "--json"
    )
    assert code == 0, err
    assert [e["student"]["display_name"] for e in json.loads(out)] == ["Ana", "Ana"]


def test_student_names_are_found_whatever_the_unicode_form(
    capsys: pytest.CaptureFixture[str], settings: Settings, seeded: Seeded
) -> None:
    typed = unicodedata.normalize("NFD", HOSTILE_NAME.upper())  # 'É' as E + combining accent
    assert typed != HOSTILE_NAME
    code, out, err = run(
        capsys, "history", "--student", typed, "--database-url", settings.database_url, "--json"
    )
    assert code == 0, err
    assert [e["student"]["display_name"] for e in json.loads(out)] == [HOSTILE_NAME]


def test_an_unknown_student_gets_a_did_you_mean(
    capsys: pytest.CaptureFixture[str], settings: Settings, seeded: Seeded
) -> None:
    code, out, err = run(
        capsys, "history", "--student", "anna", "--database-url", settings.database_url
    )
    assert code == 2 and out == ""
    assert "Did you mean 'Ana'?" in err and err.rstrip().endswith("Received: 'anna'")


def test_names_that_differ_only_in_case_are_not_guessed(
    capsys: pytest.CaptureFixture[str], settings: Settings, writer: Writer, seeded: Seeded
) -> None:
    seed_meeting(writer, replace(SEED.geometry, meeting_id="other", students={"ANA": []}))
    assert writer.flush(timeout_s=30)
    db = ("--database-url", settings.database_url)
    code, out, _ = run(capsys, "history", "--student", "Ana", *db, "--json")  # exact wins
    assert code == 0 and len(json.loads(out)) == 2
    code, out, err = run(capsys, "history", "--student", "ana", *db)
    assert code == 2 and "'ANA', 'Ana'" in err and err.rstrip().endswith("Received: 'ana'")


def test_counts_of_one_are_singular(
    capsys: pytest.CaptureFixture[str], settings: Settings, seeded: Seeded, storage: Storage
) -> None:
    algebra = summary_text(storage, SEED.algebra.meeting_id)
    assert "3 students, 2 alerts" in algebra
    ana = next(line for line in algebra.splitlines() if line.strip().startswith("Ana:"))
    assert ana.endswith("(120 samples, 1 alert)")
    assert "0 alerts" in summary_text(storage, SEED.geometry.meeting_id)
    code, out, _ = run(
        capsys, "forget-student", "Dan", "--dry-run", "--database-url", settings.database_url
    )
    assert code == 0
    assert "Dan: 1 participant row in 1 meeting, 60 samples" in out
    assert " 0 alerts, 0 consent events" in out


def test_export_of_nothing_writes_nothing_and_says_so(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    out_file = tmp_path / "history.csv"
    code, out, err = run(capsys, "export", str(out_file), "--database-url", settings.database_url)
    assert code == 0 and err == ""
    assert out.strip() == f"nothing to export (no meetings stored): {out_file} not written"
    assert not out_file.exists()


def test_a_reader_that_goes_away_is_no_error(settings: Settings, seeded: Seeded) -> None:
    """``classpulse history --json | head -c 1``: no traceback, no 'Broken pipe' line."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CLASSPULSE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "history", "--database-url", settings.database_url],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone before the first line is written
    _, err = process.communicate(timeout=60)
    assert err == ""
    assert process.returncode == 141  # as a command ended by SIGPIPE
