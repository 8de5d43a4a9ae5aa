"""Rooms of ``serve`` on SQLite and PostgreSQL: stored, listed after reopening, closed once;
the 0002 migration adds the table to a database at 0001 without touching its history."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from storage import MeetingOpened, Storage, StoredRoom
from storage.db import create_engine_for, downgrade_database, upgrade_database


def test_rooms_survive_reopening_and_close_once(database_url: str) -> None:
    with Storage.open(database_url) as storage:
        storage.add_room(StoredRoom("math-7-ab12", "Math 7b", "t" * 32, 100.0))
        storage.add_room(StoredRoom("bio-cd34", "Biologie – Zellen", "u" * 32, 200.0))
        with pytest.raises(ValueError, match="new room name"):
            storage.add_room(StoredRoom("math-7-ab12", "again", "v" * 32, 300.0))
    with Storage.open(database_url) as reopened:  # what a restarted serve sees
        assert reopened.open_rooms() == [
            StoredRoom("math-7-ab12", "Math 7b", "t" * 32, 100.0),
            StoredRoom("bio-cd34", "Biologie – Zellen", "u" * 32, 200.0),
        ]
        assert reopened.close_room("math-7-ab12", 400.0) is True
        assert reopened.close_room("math-7-ab12", 500.0) is False  # closed already
        assert reopened.close_room("nope", 500.0) is False
        assert [room.name for room in reopened.open_rooms()] == ["bio-cd34"]
        with pytest.raises(ValueError, match="new room name"):  # a closed name stays used
            reopened.add_room(StoredRoom("math-7-ab12", "Math", "w" * 32, 600.0))


def test_titles_are_bounded(database_url: str) -> None:
    with Storage.open(database_url) as storage:
        for title in ("", "x" * 256):
            with pytest.raises(ValueError, match="room title"):
                storage.add_room(StoredRoom("r1", title, "t" * 32, 1.0))
        assert storage.open_rooms() == []


def test_migration_0002_adds_rooms_beside_existing_history(database_url: str) -> None:
    with Storage.open(database_url) as storage:
        writer = storage.writer(max_delay_s=0.01)
        writer.submit(MeetingOpened("m1", "builtin", "r1", 1.0, title="Kept"))
        assert writer.flush(timeout_s=30)
        writer.close()
    downgrade_database(database_url, "0001")  # a database from before rooms, with history
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            assert "rooms" not in inspect(connection).get_table_names()
    finally:
        engine.dispose()
    upgrade_database(database_url)
    with Storage.open(database_url) as storage:
        storage.add_room(StoredRoom("r1", "Kept", "t" * 32, 2.0))
        assert [m.title for m in storage.meetings()] == ["Kept"]
        assert [r.name for r in storage.open_rooms()] == ["r1"]
