"""Settings read once from the environment: values reach the runtime, bad ones fail at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings, default_num_media_workers


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CLASSPULSE_DATA_DIR": str(tmp_path), **extra}


def test_media_workers_default_to_one_per_core_at_the_runtime(tmp_path: Path) -> None:
    settings = Settings.from_env(_environ(tmp_path))
    assert settings.media_workers is None  # the runtime sizes it to the machine
    assert default_num_media_workers() >= 1


def test_media_workers_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(_environ(tmp_path, CLASSPULSE_MEDIA_WORKERS=" 3 "))
    assert settings.media_workers == 3


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", "999"])
def test_bad_media_workers_fail_at_start_naming_the_variable(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match=r"Expected CLASSPULSE_MEDIA_WORKERS .*Received: '"):
        Settings.from_env(_environ(tmp_path, CLASSPULSE_MEDIA_WORKERS=text))


def test_media_workers_given_directly_are_checked(tmp_path: Path) -> None:
    base = Settings.from_env(_environ(tmp_path))
    with pytest.raises(ValueError, match=r"Expected media_workers from 1 to 256\. Received: 0"):
        base.replace(media_workers=0)
