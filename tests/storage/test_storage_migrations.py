"""Schema and migrations on SQLite and PostgreSQL: head matches the models; upgrades repeat."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from storage import Storage
from storage.db import (
    MIGRATIONS_DIR,
    Base,
    alembic_config,
    create_engine_for,
    downgrade_database,
    upgrade_database,
)

TABLES = {"meetings", "participants", "samples", "state_changes", "alerts", "consent_events"}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("0001_*.py"))


def test_upgrade_creates_the_schema_at_head(database_url: str) -> None:
    upgrade_database(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
            assert MigrationContext.configure(connection).get_current_revision() == _head()
            sample_indexes = {i["name"] for i in inspect(connection).get_indexes("samples")}
            assert {"ix_samples_participant_id_t", "ix_samples_participant_id_state"} <= (
                sample_indexes
            )
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    upgrade_database(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_upgrade_is_idempotent_and_downgrade_reverts(database_url: str) -> None:
    upgrade_database(database_url)
    upgrade_database(database_url)  # a second start changes nothing
    downgrade_database(database_url, "base")
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            assert not TABLES & set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    upgrade_database(database_url)
    with Storage.open(database_url) as storage:
        assert storage.meetings() == []


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/pragmas.db"
    upgrade_database(url)
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(storage: Storage) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), storage.session() as session, session.begin():
        session.execute(
            text(
                "INSERT INTO participants (meeting_id, display_name, joined_at, opted_out) "
                "VALUES ('no-such-meeting', 'Ana', 0, false)"
            )
        )
