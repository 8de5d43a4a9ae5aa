"""Attention per sample on SQLite and PostgreSQL: the 0003 migration on a database with history,
the writer, and every read that serves samples (summary, timeline, lanes, export)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from engine.types import EngagementState as S
from storage import Sample, Storage
from storage.db import create_engine_for, downgrade_database, upgrade_database
from storage.export import write_csv, write_json
from tests.storage.helpers import insert_old_participant, join, opened, run_sql

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
ATTENTION_COLUMNS = {"yaw", "pitch", "eyes_open", "looking_away"}


def _sample_columns(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return {c["name"] for c in inspect(connection).get_columns("samples")}
    finally:
        engine.dispose()


def test_existing_database_upgrades_and_downgrades_keeping_its_samples(database_url: str) -> None:
    upgrade_database(database_url, "0002")  # a database from before attention
    insert_old_participant(database_url, T0)
    run_sql(
        database_url,
        (
            "INSERT INTO samples (participant_id, t, p_interested, p_bored, p_confused, "
            "face_present, state) SELECT id, :t, 0.8, 0.1, 0.1, true, 'interested' "
            "FROM participants",
            {"t": T0 + 1},
        ),
    )
    assert not ATTENTION_COLUMNS & _sample_columns(database_url)

    with Storage.open(database_url) as storage:  # opening upgrades to head
        assert _sample_columns(database_url) >= ATTENTION_COLUMNS
        with storage.writer() as writer:
            writer.submit(
                Sample(
                    "m-old", "Ana", T0 + 2, S.INTERESTED, True, 0.7, 0.2, 0.1,
                    yaw=41.5, pitch=-3.0, eyes_open=True, looking_away=True,
                )
            )  # fmt: skip
        with storage.session() as session:
            rows = session.execute(
                text("SELECT t, yaw, pitch, eyes_open, looking_away FROM samples ORDER BY t")
            ).all()
        assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
            (None, None, None, None),  # the old row: no reading, not "looking at the camera"
            (41.5, -3.0, True, True),
        ]
        summary = storage.meeting_summary("m-old").students[0]
        assert (summary.seconds_looking_away, summary.num_attention_samples) == (1.0, 1)

    downgrade_database(database_url, "0002")
    assert not ATTENTION_COLUMNS & _sample_columns(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM samples")).scalar_one() == 2
    finally:
        engine.dispose()
    upgrade_database(database_url)
    assert _sample_columns(database_url) >= ATTENTION_COLUMNS


def _attention_class(storage: Storage) -> str:
    """Ana: 20 s facing the camera, 20 s turned away, 10 s eyes closed, 10 s without a reading.
    Bo (attention mode): 30 s present with no scores, 10 s with no face."""
    meeting = "m-attention"
    with storage.writer() as writer:
        writer.submit(opened(meeting, T0))
        writer.submit(join(meeting, "Ana", T0))
        writer.submit(join(meeting, "Bo", T0))
        for i in range(60):
            reading: dict[str, object] = {}
            if i < 20:
                reading = {"yaw": 2.0, "pitch": 1.0, "eyes_open": True, "looking_away": False}
            elif i < 40:
                reading = {"yaw": 55.0, "pitch": 0.0, "eyes_open": True, "looking_away": True}
            elif i < 50:
                reading = {"yaw": 0.0, "pitch": -5.0, "eyes_open": False, "looking_away": False}
            writer.submit(
                Sample(meeting, "Ana", T0 + i, S.INTERESTED, True, 0.8, 0.1, 0.1, **reading)  # type: ignore[arg-type]
            )
        for i in range(40):
            face = i < 30
            writer.submit(
                Sample(
                    meeting, "Bo", T0 + i, S.PRESENT if face else S.NO_FACE, face,
                    yaw=-10.0 if face else None, pitch=0.0 if face else None,
                    eyes_open=True if face else None, looking_away=False if face else None,
                )
            )  # fmt: skip
    return meeting


def test_summary_timeline_and_lanes_carry_attention(storage: Storage) -> None:
    meeting = _attention_class(storage)
    students = {s.display_name: s for s in storage.meeting_summary(meeting).students}
    ana, bo = students["Ana"], students["Bo"]
    assert (ana.seconds_looking_away, ana.seconds_eyes_closed) == (20.0, 10.0)
    assert ana.num_attention_samples == 50
    assert (bo.seconds_present, bo.share_present, bo.seconds_no_face) == (30.0, 0.75, 10.0)
    assert (bo.seconds_looking_away, bo.seconds_eyes_closed, bo.num_attention_samples) == (
        0.0,
        0.0,
        30,
    )

    timeline = storage.class_timeline(meeting, bucket_s=20)
    assert [(b.share_looking_away, b.share_eyes_closed) for b in timeline] == [
        (0.0, 0.0),  # 0–20 s: Ana facing, Bo present
        (0.5, 0.0),  # 20–40 s: Ana away (20 of 40 samples)
        (0.0, 0.5),  # 40–60 s: Ana's eyes closed 10 of 20 samples
    ]
    assert timeline[0].share_present == 0.5

    lanes = {lane.display_name: lane for lane in storage.student_lanes(meeting, bucket_s=10)}
    ana_lane = [
        (b.start_s, b.share_looking_away, b.share_eyes_closed) for b in lanes["Ana"].buckets
    ]
    assert ana_lane == [
        (0.0, 0.0, 0.0),
        (10.0, 0.0, 0.0),
        (20.0, 1.0, 0.0),
        (30.0, 1.0, 0.0),
        (40.0, 0.0, 1.0),
        (50.0, 0.0, 0.0),  # no reading: neither away nor closed
    ]
    bo_lane = lanes["Bo"].buckets
    assert [b.state for b in bo_lane] == ["present", "present", "present", "no_face"]
    assert all(b.share_looking_away == 0.0 for b in bo_lane)


def test_exports_carry_attention(storage: Storage) -> None:
    meeting = _attention_class(storage)
    summary = storage.meeting_summary(meeting)
    out = io.StringIO()
    write_csv(summary, out)
    rows = {r["students.display_name"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert rows["Ana"]["students.seconds_looking_away"] == "20.0"
    assert rows["Ana"]["students.seconds_eyes_closed"] == "10.0"
    out = io.StringIO()
    write_json(storage.student_lanes(meeting, bucket_s=10), out)
    lanes = {lane["display_name"]: lane for lane in json.loads(out.getvalue())}
    assert [b["share_looking_away"] for b in lanes["Ana"]["buckets"]][2:4] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"yaw": 200.0}, "Expected yaw in degrees from -180 to 180. Received: 200.0"),
        ({"pitch": float("nan")}, "Expected pitch in degrees from -180 to 180. Received: nan"),
        ({"yaw": True}, "Expected yaw in degrees from -180 to 180. Received: True"),
        ({"eyes_open": 1}, "Expected eyes_open to be a bool or None. Received: 1"),
        ({"looking_away": "yes"}, "Expected looking_away to be a bool or None. Received: 'yes'"),
    ],
)
def test_sample_refuses_bad_attention(fields: dict[str, object], expected: str) -> None:
    with pytest.raises(ValueError) as raised:
        Sample("m", "Ana", T0, S.PRESENT, True, **fields)  # type: ignore[arg-type]
    assert str(raised.value) == expected
