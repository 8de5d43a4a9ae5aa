"""Exports of every kind of query result to CSV and JSON, read back with the standard library."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.types import EngagementState as S
from storage import AlertRaised, Storage, export_to_path, to_records, write_csv, write_json
from tests.storage.helpers import join, opened, sample

T0 = datetime(2025, 6, 16, 9, 0, tzinfo=UTC).timestamp()
MEETING = "m-export"


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Storage]:
    storage = Storage.open(f"sqlite:///{tmp_path}/export.db")
    with storage.writer() as writer:
        writer.submit(opened(MEETING, T0, title="Physics, part 2", teacher='Dr "Q"'))
        writer.submit(join(MEETING, "Ana", T0))
        writer.submit(join(MEETING, "Bo", T0))
        for i in range(20):
            writer.submit(sample(MEETING, "Ana", T0 + i, S.CONFUSED if i % 2 else S.INTERESTED))
            writer.submit(sample(MEETING, "Bo", T0 + i, S.NO_FACE))
        writer.submit(AlertRaised(MEETING, T0 + 5, "confused", "Ana, line 1\nline 2", True, "Ana"))
        assert writer.flush(timeout_s=10)
    yield storage
    storage.close()


def _csv(value: object) -> list[dict[str, str]]:
    out = io.StringIO()
    write_csv(value, out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def _json(value: object) -> object:
    out = io.StringIO()
    write_json(value, out)
    return json.loads(out.getvalue())


def test_meeting_summary_exports_one_csv_row_per_student(filled: Storage) -> None:
    summary = filled.meeting_summary(MEETING)
    rows = _csv(summary)
    assert [r["students.display_name"] for r in rows] == ["Ana", "Bo"]
    assert rows[0]["meeting.title"] == "Physics, part 2"
    assert rows[0]["meeting.teacher"] == 'Dr "Q"'
    assert rows[0]["meeting.started_at"] == "2025-06-16T09:00:00+00:00"
    assert rows[0]["meeting.ended_at"] == ""
    assert float(rows[0]["students.share_confused"]) == 0.5
    assert rows[1]["students.seconds_no_face"] == "20.0"
    assert rows[1]["students.opted_out"] == "false"
    assert rows[0]["num_alerts"] == "1"

    data = _json(summary)
    assert isinstance(data, dict)
    assert data["meeting"]["started_at"] == "2025-06-16T09:00:00+00:00"
    assert [s["display_name"] for s in data["students"]] == ["Ana", "Bo"]
    assert data["students"][0]["share_confused"] == 0.5


def test_lists_of_results_export_to_csv_and_json(filled: Storage) -> None:
    for value in (
        filled.meetings(),
        filled.class_timeline(MEETING, 10),
        filled.student_history("Ana"),
        filled.alerts(MEETING),
    ):
        rows = _csv(value)
        assert len(rows) == len(value)
        data = _json(value)
        assert isinstance(data, list) and len(data) == len(value)

    (alert,) = _csv(filled.alerts(MEETING))
    assert alert["text"] == "Ana, line 1\nline 2"  # quoting survives commas and newlines
    (entry,) = _csv(filled.student_history("Ana"))
    assert entry["meeting.meeting_id"] == MEETING and entry["student.num_samples"] == "20"
    timeline = _json(filled.class_timeline(MEETING, 10))
    assert isinstance(timeline, list)
    assert [b["start_s"] for b in timeline] == [0.0, 10.0]


def test_export_to_path_picks_the_format(filled: Storage, tmp_path: Path) -> None:
    summary = filled.meeting_summary(MEETING)
    csv_path = export_to_path(summary, tmp_path / "summary.csv")
    assert csv_path.read_text(encoding="utf-8").startswith("meeting.meeting_id,")
    json_path = export_to_path(summary, tmp_path / "summary.out", format="json")
    assert json.loads(json_path.read_text(encoding="utf-8"))["num_alerts"] == 1
    with pytest.raises(ValueError, match="Expected an export format") as raised:
        export_to_path(summary, tmp_path / "summary.xlsx")
    assert "Received:" in str(raised.value)


def test_empty_results_and_non_results(filled: Storage) -> None:
    assert to_records([]) == []
    out = io.StringIO()
    write_csv([], out)
    assert out.getvalue().strip() == ""
    with pytest.raises(ValueError, match="Expected query results"):
        to_records([{"not": "a dataclass"}])


def test_csv_cells_that_look_like_formulas_stay_text() -> None:
    import dataclasses
    import io

    from storage.export import write_csv

    @dataclasses.dataclass(frozen=True)
    class Row:
        display_name: str
        n: int
        ok: str

    out = io.StringIO()
    write_csv([Row('=HYPERLINK("http://x")', -1, "Ana")], out)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("\"'=HYPERLINK(") and lines[1].endswith(",-1,Ana")
