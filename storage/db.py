"""Storage plumbing: the declarative Base, the database URL setting, engines, sessions, Alembic."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

#: The one setting that moves the database.
DATABASE_URL_ENV = "CLASSPULSE_DATABASE_URL"

#: Where migrations live; shipped as package data so no alembic.ini is needed at run time.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Constraint names are part of the schema that migrations refer to: make them predictable on
# both databases instead of leaving them to each backend's defaults.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_URL_EXAMPLES = (
    "'sqlite:////absolute/path/classpulse.db' or "
    "'postgresql+psycopg://user:password@host:5432/classpulse'"
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def default_database_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/classpulse/classpulse.db``, ``~/.local/share/classpulse/`` when unset."""
    environ = os.environ if environ is None else environ
    data_home = environ.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
    return Path(data_home).expanduser() / "classpulse" / "classpulse.db"


def database_url_from_env(environ: Mapping[str, str] | None = None) -> URL:
    """The configured database: ``$CLASSPULSE_DATABASE_URL`` or SQLite in the per-user data dir."""
    environ = os.environ if environ is None else environ
    value = environ.get(DATABASE_URL_ENV, "").strip()
    if value:
        return parse_database_url(value)
    return parse_database_url(f"sqlite:///{default_database_path(environ)}")


def parse_database_url(url: str | URL) -> URL:
    """Checks a database URL and names its driver: SQLite, or PostgreSQL through psycopg 3.

    Raises ``ValueError`` naming what was expected and what was received.
    """
    if isinstance(url, URL):
        parsed = url
    else:
        if not isinstance(url, str) or not url.strip():
            raise ValueError(f"Expected a database URL such as {_URL_EXAMPLES}. Received: {url!r}")
        try:
            parsed = make_url(url.strip())
        except ArgumentError:
            raise ValueError(
                f"Expected a database URL such as {_URL_EXAMPLES}. Received: {url!r}"
            ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ValueError(
                f"Expected SQLite through Python's sqlite3 ('sqlite:///...'). "
                f"Received: {_shown(parsed)}"
            )
        return parsed.set(drivername="sqlite")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ValueError(
                f"Expected PostgreSQL through psycopg 3 ('postgresql+psycopg://...'). "
                f"Received: {_shown(parsed)}"
            )
        if not parsed.database:
            raise ValueError(
                f"Expected a PostgreSQL URL that names a database. Received: {_shown(parsed)}"
            )
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(
        f"Expected a sqlite or postgresql database URL such as {_URL_EXAMPLES}. "
        f"Received: {_shown(parsed)}"
    )


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL; ``None`` for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        # URI form (``?uri=true``): the path ends at the query string.
        database = database[len("file:") :].split("?", 1)[0]
        if database in ("", ":memory:"):
            return None
    return Path(database)


def create_engine_for(
    url: str | URL,
    *,
    writes: bool = False,
    busy_timeout_s: float = 5.0,
    **engine_kwargs: Any,
) -> Engine:
    """An engine for ``url`` with the settings every classpulse connection needs.

    SQLite: WAL journal (readers never block the writer), foreign keys on, ``synchronous=NORMAL``
    (a killed process loses nothing committed; WAL keeps the file consistent), and real
    transactions: pysqlite's own lazy BEGIN is turned off and SQLAlchemy emits it. With
    ``writes=True`` that is ``BEGIN IMMEDIATE``: the write lock is taken up front, so a writer never
    fails half-way through a batch on a lock it could have waited for.

    PostgreSQL: with ``writes=True`` a ``lock_timeout`` makes a locked table an error to retry
    rather than an endless wait.
    """
    parsed = parse_database_url(url)
    if is_sqlite(parsed):
        path = sqlite_path(parsed)
        read_only = "mode=ro" in (parsed.database or "") or parsed.query.get("mode") == "ro"
        if path is not None and not read_only:
            private_database_file(path)
        connect_args = dict(engine_kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", busy_timeout_s)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(parsed, connect_args=connect_args, **engine_kwargs)
        _install_sqlite_hooks(engine, immediate=writes)
        return engine
    connect_args = dict(engine_kwargs.pop("connect_args", {}))
    if writes:
        lock_timeout_ms = max(1, round(busy_timeout_s * 1000))
        options = connect_args.get("options", "")
        connect_args["options"] = f"{options} -c lock_timeout={lock_timeout_ms}".strip()
    engine_kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, connect_args=connect_args, **engine_kwargs)


def private_database_file(path: Path) -> None:
    """The history names students: folders this makes are 0700, the database file 0600 from its
    first byte (SQLite gives its ``-wal`` and ``-shm`` files the database file's mode), and an
    existing database, ``-wal`` and ``-shm`` lose any group or other access."""
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            mode = file.stat().st_mode & 0o777
            if mode & 0o077:
                file.chmod(mode & 0o700)


def _install_sqlite_hooks(engine: Engine, *, immediate: bool) -> None:
    begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # A read-only or locked file keeps the journal mode it has.
            with contextlib.suppress(Exception):
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin_sql)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit: results outlive the ``with`` block."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def upgrade_database(url: str | URL | Engine, revision: str = "head") -> None:
    """Brings the schema to ``revision`` with Alembic; run on every start, a no-op when current."""
    from alembic import command

    engine = url if isinstance(url, Engine) else create_engine_for(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if engine is not url:
            engine.dispose()


def downgrade_database(url: str | URL | Engine, revision: str = "base") -> None:
    """Undoes migrations down to ``revision`` (tests and manual repair only)."""
    from alembic import command

    engine = url if isinstance(url, Engine) else create_engine_for(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        if engine is not url:
            engine.dispose()


def alembic_config() -> Any:
    """An Alembic ``Config`` built in code: the migrations folder inside the installed package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _shown(url: URL) -> str:
    return repr(url.render_as_string(hide_password=True))
