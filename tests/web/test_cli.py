"""The teacher's CLI subcommands, in-process through ``bot.cli.main``, and ``classpulse serve``
as a real process on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import Settings
from engine.types import EngagementState
from storage import Storage
from tests.web.conftest import HOSTILE_NAME, Seeded

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_history_lists_meetings_as_a_table_json_and_csv(
    capsys: pytest.CaptureFixture[str], settings: Settings, seeded: Seeded
) -> None:
    db = ("--database-url", settings.database_url)
    code, out, _ = run(capsys, "history", *db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["meeting", "started", "length"]
    assert seeded.algebra.meeting_id in lines[2] and "Algebra" in lines[2] and "2:00" in lines[2]
    assert seeded.geometry.meeting_id in lines[3]
    code, out, _ = run(capsys, "history", *db, "--json", "--teacher", "Mr Okafor")
    assert code == 0
    assert [m["meeting_id"] for m in json.loads(out)] == [seeded.geometry.meeting_id]
    code, out, _ = run(
        capsys, "history", *db, "--csv", "--since", "2026-03-01", "--until", "2026-03-05"
    )
    assert [r["meeting_id"] for r in csv.DictReader(io.StringIO(out))] == [
        seeded.algebra.meeting_id
    ]


def test_history_of_one_meeting_and_one_student(
    capsys: pytest.CaptureFixture[str], settings: Settings, seeded: Seeded
) -> None:
    db = ("--database-url", settings.database_url)
    code, out, _ = run(capsys, "history", seeded.algebra.meeting_id, *db)
    assert code == 0
    ana = next(line for line in out.splitlines() if line.startswith("Ana "))
    assert "1:00  50%" in ana  # one minute interested, one confused
    assert "\x1b" not in out and "<img src=x" in out  # printable, not interpreted
    code, out, _ = run(capsys, "history", seeded.algebra.meeting_id, *db, "--json")
    summary = json.loads(out)
    ben = next(s for s in summary["students"] if s["display_name"] == "Ben")
    assert ben["seconds_no_face"] == seeded.algebra.students["Ben"].count(EngagementState.NO_FACE)
    code, out, _ = run(
        capsys, "history", seeded.algebra.meeting_id, *db, "--timeline", "30s", "--csv"
    )
    assert [float(r["start_s"]) for r in csv.DictReader(io.StringIO(out))] == [0, 30, 60, 90]
    code, out, _ = run(capsys, "history", seeded.algebra.meeting_id, *db, "--alerts")
    assert "Ana looks confused" in out and "(class)" in out
    code, out, _ = run(capsys, "history", "--student", "Ana", *db)
    assert code == 0 and "Algebra" in out and "Geometry" in out
    code, out, _ = run(
        capsys, "history", "--student", "Ana", *db, "--json", "--since", "2026-03-05"
    )
    assert [e["meeting"]["title"] for e in json.loads(out)] == ["Geometry"]


def test_errors_are_one_line_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], settings: Settings, seeded: Seeded
) -> None:
    db = ("--database-url", settings.database_url)
    for argv, word in [
        (("history", "no-such-meeting", *db), "no-such-meeting"),
        (("history", "--student", "Nobody", *db), "Nobody"),
        (("history", "--since", "last week", *db), "--since"),
        (("history", seeded.algebra.meeting_id, "--timeline", "0s", *db), "bucket"),
        (("history", "--alerts", *db), "MEETING"),
        (("purge", "--older-than", "soon", *db), "--older-than"),
        (("forget-student", "Nobody", *db), "Nobody"),
        (("history", "--database-url", "mysql://x/y"), "sqlite"),
        (("export", "out.txt", *db), "csv"),
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"classpulse {argv[0]}: error: ") and word in err, err


def test_export_writes_csv_and_json_files(
    capsys: pytest.CaptureFixture[str], settings: Settings, seeded: Seeded, tmp_path: Path
) -> None:
    db = ("--database-url", settings.database_url)
    target = tmp_path / "algebra.csv"
    code, out, _ = run(capsys, "export", str(target), "--meeting", seeded.algebra.meeting_id, *db)
    assert code == 0 and str(target) in out
    rows = list(csv.DictReader(target.open()))
    assert sorted(r["students.display_name"] for r in rows) == sorted(seeded.algebra.students)
    timeline = tmp_path / "timeline.json"
    code, _, _ = run(
        capsys,
        "export",
        str(timeline),
        "--meeting",
        seeded.algebra.meeting_id,
        "--what",
        "timeline",
        "--bucket",
        "1m",
        *db,
    )
    assert [b["start_s"] for b in json.loads(timeline.read_text())] == [0, 60]
    code, out, _ = run(capsys, "export", "-", "--format", "json", "--student", "Ana", *db)
    assert len(json.loads(out)) == 2


def test_purge_and_forget_student_delete_what_they_say(
    capsys: pytest.CaptureFixture[str], settings: Settings, seeded: Seeded, storage: Storage
) -> None:
    db = ("--database-url", settings.database_url)
    # A dry run says what would go and deletes nothing; without --yes and no terminal: refused.
    code, out, _ = run(capsys, "forget-student", HOSTILE_NAME, "--dry-run", *db)
    assert code == 0 and out.startswith("would delete ") and "120 samples" in out
    code, _, err = run(capsys, "forget-student", HOSTILE_NAME, *db)
    assert code == 2 and "Expected --yes" in err
    assert len(storage.meeting_summary(seeded.algebra.meeting_id).students) == 3
    code, out, _ = run(capsys, "forget-student", HOSTILE_NAME, "--yes", *db)
    assert code == 0 and "1 participant row in 1 meeting, 120 samples" in out
    assert out.startswith("will delete ") and "\nforgot " in out
    assert "\x1b" not in out
    assert {
        s.display_name for s in storage.meeting_summary(seeded.algebra.meeting_id).students
    } == {
        "Ana",
        "Ben",
    }
    # The seeded meetings are from March 2026; the geometry class ended a week after algebra.
    age_days = (time.time() - seeded.geometry.started_at) / 86400
    older = f"{age_days + 1:.3f}d"
    code, out, _ = run(capsys, "purge", "--older-than", older, "--dry-run", *db)
    assert (
        code == 0 and out.startswith("would delete 1 meeting that") and len(storage.meetings()) == 2
    )
    code, out, _ = run(capsys, "purge", "--older-than", older, "--yes", *db)
    assert code == 0 and "\ndeleted 1 meeting that" in out
    assert [m.meeting_id for m in storage.meetings()] == [seeded.geometry.meeting_id]
    code, out, _ = run(capsys, "purge", "--older-than", "0", "--yes", *db)
    assert "\ndeleted 1 meeting that" in out and storage.meetings() == []


def test_serve_binds_loopback_shows_the_token_once_and_stops_on_sigterm(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CLASSPULSE_")}
    command = [
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--port",
        "0",
        "--history-only",
        "--data-dir",
        str(tmp_path / "data"),
        "--log-format",
        "json",
    ]

    def start() -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        return process, process.stdout.readline()

    def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        return out, err

    process, first = start()
    try:
        assert first.startswith("classpulse: serving http://127.0.0.1:"), first
        base = first.split()[2]
        assert process.stdout is not None
        token = process.stdout.readline().rsplit(" ", 1)[1].strip()
        assert process.stdout.readline().strip().endswith(f"#token={token}")
        request = urllib.request.Request(
            f"{base}api/meetings", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer) == {"meetings": []}
        with urllib.request.urlopen(f"{base}metrics", timeout=10) as answer:
            assert "classpulse_bots_running 0" in answer.read().decode()
    finally:
        _, err = stop(process)
    logged = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any(
        entry["logger"] == "aiohttp.access" and "/metrics" in entry["message"] for entry in logged
    )
    assert (tmp_path / "data" / "api_token.json").exists()
    assert (tmp_path / "data" / "classpulse.db").exists()

    process, first = start()  # second start: the token is not shown again
    out, _ = stop(process)
    assert first.startswith("classpulse: serving") and "token" not in first + out
