"""``classpulse db ...`` run in-process against a temp SQLite history."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from engine.types import EngagementState as S
from storage import AlertRaised, MeetingClosed, Storage
from storage.commands import main
from tests.storage.helpers import join, opened, sample

T0 = 1_750_000_000.0  # 2025-06-15


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    with Storage.open(url) as storage, storage.writer() as writer:
        writer.submit(opened("m1", T0, teacher="Ms Lovelace", room="math-101"))
        writer.submit(join("m1", "Ana", T0))
        writer.submit_many(sample("m1", "Ana", T0 + i, S.BORED) for i in range(12))
        writer.submit(AlertRaised("m1", T0 + 5, "bored", "Ana is bored", True, "Ana"))
        writer.submit(MeetingClosed("m1", T0 + 12))
        assert writer.flush(timeout_s=10)
    return url


def _run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_reads_print_json_or_csv(url: str, tmp_path: Path) -> None:
    code, out, _ = _run("--database", url, "meetings", "--teacher", "Ms Lovelace")
    assert code == 0 and [m["meeting_id"] for m in json.loads(out)] == ["m1"]
    code, out, _ = _run("--database", url, "meetings", "--since", "2025-07-01")
    assert code == 0 and json.loads(out) == []
    code, out, _ = _run("--database", url, "summary", "m1", "--format", "csv")
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["students.display_name"] == "Ana" and row["students.seconds_bored"] == "12.0"
    code, out, _ = _run("--database", url, "timeline", "m1", "--bucket-s", "5")
    assert [b["num_samples"] for b in json.loads(out)] == [5, 5, 2]
    target = tmp_path / "history.csv"
    assert (
        _run("--database", url, "history", "Ana", "--format", "csv", "--output", str(target))[0]
        == 0
    )
    assert "student.num_samples" in target.read_text()
    code, out, _ = _run("alerts", "m1", environ={"CLASSPULSE_DATABASE_URL": url})
    assert code == 0 and json.loads(out)[0]["text"] == "Ana is bored"


def test_purge_and_forget(url: str) -> None:
    code, out, err = _run("--database", url, "forget", "Ana")
    assert code == 2 and "--yes" in err
    code, out, _ = _run("--database", url, "forget", "Ana", "--yes")
    assert code == 0 and json.loads(out)["num_samples"] == 12
    code, out, _ = _run("--database", url, "purge", "--older-than-days", "30")
    assert code == 0 and json.loads(out)["num_meetings"] == 1


def test_errors_are_clear_and_set_the_exit_status(url: str) -> None:
    code, _, err = _run("--database", url, "summary", "nope")
    assert code == 1 and "Received: 'nope'" in err
    code, _, err = _run("--database", url, "history", "Zed")
    assert code == 1 and "Received: 'Zed'" in err
    code, _, err = _run("--database", "mysql://x/y", "meetings")
    assert code == 2 and "Received:" in err
    assert _run("--database", url, "meetings", "--since", "last week")[0] == 2
    code, out, _ = _run("--database", url, "upgrade")
    assert code == 0 and "up to date" in out
