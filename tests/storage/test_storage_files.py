"""The history names students: its folder and files are the user's alone."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from bot.settings import Settings
from bot.web.auth import ensure_api_token
from storage import MeetingOpened, Storage, new_meeting_id


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_database_folder_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a usual umask would make them world-readable
    try:
        folder = tmp_path / "data" / "classpulse"
        database = folder / "classpulse.db"
        storage = Storage.open(f"sqlite:///{database}")
        try:
            writer = storage.writer()
            writer.submit(MeetingOpened(new_meeting_id(), "janus", "1", time.time()))
            assert writer.flush(10)
            files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
            assert all(f.exists() for f in files)  # WAL mode, while open
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
            assert mode(folder) == 0o700 and mode(folder.parent) == 0o700
            writer.close()
        finally:
            storage.close()
    finally:
        os.umask(old_umask)


def test_an_existing_database_and_data_folder_are_tightened(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    Storage.open(f"sqlite:///{database}").close()
    database.chmod(0o644)
    Storage.open(f"sqlite:///{database}").close()
    assert mode(database) == 0o600
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    ensure_api_token(Settings(database_url="sqlite://", data_dir=data))
    assert mode(data) == 0o700
    assert mode(data / "api_token.json") == 0o600
