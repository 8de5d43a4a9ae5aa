"""The database setting: default location, CLASSPULSE_DATABASE_URL, clear errors for bad URLs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage import Storage, database_url_from_env, default_database_path, parse_database_url

ROOT = Path(__file__).resolve().parents[2]


def test_default_is_sqlite_in_the_per_user_data_dir(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path / "home")}
    assert default_database_path(env) == tmp_path / "data" / "classpulse" / "classpulse.db"
    url = database_url_from_env(env)
    assert url.get_backend_name() == "sqlite"
    assert url.database == str(tmp_path / "data" / "classpulse" / "classpulse.db")


def test_default_without_xdg_is_under_local_share() -> None:
    path = default_database_path({})
    assert path.parts[-4:] == (".local", "share", "classpulse", "classpulse.db")


def test_environment_setting_wins(tmp_path: Path) -> None:
    env = {"CLASSPULSE_DATABASE_URL": "postgresql://teacher:secret@db.example/classpulse"}
    url = database_url_from_env(env)
    assert url.drivername == "postgresql+psycopg"
    assert url.database == "classpulse"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "Expected a database URL"),
        ("   ", "Expected a database URL"),
        ("not a url", "Expected a database URL"),
        ("mysql://user@host/db", "Expected a sqlite or postgresql database URL"),
        ("sqlite+aiosqlite:///x.db", "Expected SQLite through Python's sqlite3"),
        ("postgresql+psycopg2://u@h/db", "Expected PostgreSQL through psycopg 3"),
        ("postgresql+psycopg://u@h", "names a database"),
    ],
)
def test_invalid_urls_say_what_was_expected(url: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as raised:
        parse_database_url(url)
    assert "Received:" in str(raised.value)


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(ValueError) as raised:
        parse_database_url("mysql://user:hunter2@host/db")
    assert "hunter2" not in str(raised.value)


def test_invalid_environment_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Received: 'nonsense'"):
        database_url_from_env({"CLASSPULSE_DATABASE_URL": "nonsense"})


def test_in_memory_sqlite_is_refused_by_storage() -> None:
    with pytest.raises(ValueError, match="Expected a SQLite file"):
        Storage.open("sqlite://")


def test_open_creates_the_folder_and_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "classpulse.db"
    with Storage.open(environ={"CLASSPULSE_DATABASE_URL": f"sqlite:///{path}"}) as storage:
        assert storage.meetings() == []
    assert path.is_file()


def test_storage_imports_no_bot_and_no_tensorflow() -> None:
    code = (
        "import sys, storage, storage.writer, storage.export, storage.retention;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('bot', 'tensorflow', 'keras'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
