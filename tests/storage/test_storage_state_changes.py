"""The confidence of state changes on SQLite and PostgreSQL: the 0004 migration on a database with
history, the writer, and rows that would store nonsense."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from engine.types import EngagementState as S
from storage import StateChanged, Storage
from storage.db import create_engine_for, downgrade_database, upgrade_database
from tests.storage.helpers import insert_old_participant, join, opened, run_sql

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


def _columns(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return {c["name"] for c in inspect(connection).get_columns("state_changes")}
    finally:
        engine.dispose()


def _changes(storage: Storage) -> list[tuple[float, str, float | None]]:
    with storage.session() as session:
        rows = session.execute(
            text("SELECT t, to_state, confidence FROM state_changes ORDER BY t")
        ).all()
    return [(float(r[0]), str(r[1]), None if r[2] is None else float(r[2])) for r in rows]


def test_existing_changes_survive_the_upgrade_and_new_ones_keep_their_confidence(
    database_url: str,
) -> None:
    upgrade_database(database_url, "0003")  # a database from before confidence
    insert_old_participant(database_url, T0)
    run_sql(
        database_url,
        (
            "INSERT INTO state_changes (participant_id, t, from_state, to_state) "
            "SELECT id, :t, NULL, 'interested' FROM participants",
            {"t": T0 + 1},
        ),
    )
    assert "confidence" not in _columns(database_url)

    with Storage.open(database_url) as storage:  # opening upgrades to head
        assert "confidence" in _columns(database_url)
        with storage.writer() as writer:
            writer.submit(StateChanged("m-old", "Ana", T0 + 2.37, S.CONFUSED, S.INTERESTED, 0.64))
            writer.submit(StateChanged("m-old", "Ana", T0 + 9.5, S.NO_FACE, S.CONFUSED))
        assert _changes(storage) == [
            (T0 + 1, "interested", None),  # the old row: no confidence was kept then
            (T0 + 2.37, "confused", 0.64),  # at its own time, not a whole second
            (T0 + 9.5, "no_face", None),
        ]

    downgrade_database(database_url, "0003")
    assert "confidence" not in _columns(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM state_changes")).scalar_one()
            assert count == 3
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("confidence", "message"),
    [
        (1.5, r"Expected confidence in \[0, 1\]\. Received: 1\.5"),
        (float("nan"), r"Expected confidence in \[0, 1\]\. Received: nan"),
        (True, r"Expected confidence to be a probability\. Received: True"),
        ("0.9", r"Expected confidence to be a probability\. Received: '0\.9'"),
    ],
)
def test_a_change_with_a_confidence_that_is_no_probability_is_refused(
    storage: Storage, confidence: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        StateChanged("m", "Ana", T0, S.CONFUSED, None, confidence)  # type: ignore[arg-type]
    with storage.writer() as writer:  # nothing half-written: the writer still works
        writer.submit(opened("m", T0))
        writer.submit(join("m", "Ana", T0))
        writer.submit(StateChanged("m", "Ana", T0 + 1, S.CONFUSED, None, 0.7))
    assert _changes(storage) == [(T0 + 1, "confused", 0.7)]
