"""Test helpers: make a database refuse writes for real (a held write lock, a read-only connection)
on SQLite and PostgreSQL alike, and count rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from engine.types import EngagementState
from storage import MeetingOpened, ParticipantJoined, Sample, Storage
from storage.db import create_engine_for, sqlite_path

TABLES = ("meetings", "participants", "samples", "state_changes", "alerts", "consent_events")


def count_rows(storage: Storage, table: str, where: str = "") -> int:
    assert table in TABLES
    with storage.session() as session:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(session.execute(text(sql)).scalar_one())


def all_counts(storage: Storage) -> dict[str, int]:
    return {table: count_rows(storage, table) for table in TABLES}


def _pg_connect(url: str, dbname: str | None = None) -> psycopg.Connection:
    parsed = make_url(url)
    return psycopg.connect(
        host=str(parsed.query["host"]),
        port=int(str(parsed.query.get("port", 5432))),
        user=parsed.username,
        dbname=dbname or parsed.database,
        autocommit=True,
    )


@contextmanager
def write_lock(url: str) -> Iterator[None]:
    """Another connection holds the database's write lock until the block ends."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        holder = sqlite3.connect(str(path), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        return
    with _pg_connect(url) as pg_holder:
        pg_holder.execute("BEGIN")
        pg_holder.execute(
            "LOCK TABLE meetings, participants, samples, state_changes, alerts, consent_events "
            "IN EXCLUSIVE MODE"
        )
        yield
        pg_holder.execute("ROLLBACK")


class ReadOnlySwitch:
    """Makes every new connection of ``engine`` read-only while on: SQLite opens the file with
    ``mode=ro``; PostgreSQL sessions start with ``default_transaction_read_only``."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.parsed = make_url(url)
        self.enabled = False
        if self.parsed.get_backend_name() == "sqlite":
            path = sqlite_path(self.parsed)

            @event.listens_for(engine, "do_connect")
            def _read_only(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict) -> None:
                if self.enabled:
                    cargs[:] = [f"file:{path}?mode=ro"]
                    cparams.pop("database", None)
                    cparams["uri"] = True

    def on(self) -> None:
        self._set(True)

    def off(self) -> None:
        self._set(False)

    def _set(self, value: bool) -> None:
        self.enabled = value
        if self.parsed.get_backend_name() == "postgresql":
            # From another database: sessions in this one are read-only while the switch is on.
            with _pg_connect(self.url, dbname="postgres") as admin:
                admin.execute(
                    f'ALTER DATABASE "{self.parsed.database}" '
                    f"SET default_transaction_read_only = {'on' if value else 'off'}"
                )


def opened(meeting_id: str, t0: float, **fields: Any) -> MeetingOpened:
    platform = fields.pop("platform", "builtin")
    room = fields.pop("room", "room-1")
    return MeetingOpened(meeting_id, platform, room, t0, **fields)


def sample(
    meeting_id: str,
    name: str,
    t: float,
    state: EngagementState = EngagementState.INTERESTED,
) -> Sample:
    if state is EngagementState.NO_FACE:
        return Sample(meeting_id, name, t, state, False)
    p = {
        EngagementState.INTERESTED: (0.8, 0.1, 0.1),
        EngagementState.BORED: (0.1, 0.8, 0.1),
        EngagementState.CONFUSED: (0.1, 0.1, 0.8),
    }[state]
    return Sample(meeting_id, name, t, state, True, *p)


def join(meeting_id: str, name: str, t: float, platform_id: str | None = None) -> ParticipantJoined:
    return ParticipantJoined(meeting_id, name, t, platform_id=platform_id)


def run_sql(url: str, *statements: tuple[str, dict[str, Any]]) -> None:
    """Run ``(sql, parameters)`` statements in one transaction on a fresh engine for ``url``."""
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            for sql, parameters in statements:
                connection.execute(text(sql), parameters)
    finally:
        engine.dispose()


def insert_old_participant(url: str, t0: float) -> None:
    """Meeting ``m-old`` with participant Ana, inserted with plain SQL: rows a database had
    before a migration (the ORM models describe the newest schema, not that one)."""
    run_sql(
        url,
        (
            "INSERT INTO meetings (id, platform, room, started_at, sample_period_s) "
            "VALUES ('m-old', 'janus', '1234', :t, 1.0)",
            {"t": t0},
        ),
        (
            "INSERT INTO participants (meeting_id, display_name, joined_at, opted_out) "
            "VALUES ('m-old', 'Ana', :t, false)",
            {"t": t0},
        ),
    )
