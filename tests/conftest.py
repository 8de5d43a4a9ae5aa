"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import aiortc  # noqa: F401  - must load before TensorFlow: TF first segfaults beside pylibsrtp
import pytest

from engine.settings_paths import datasets_dir as _datasets_dir


def require(condition: bool, reason: str) -> None:
    """Fail under ``CI=true`` (CI must have every part), skip elsewhere, when ``condition`` is false."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``$CLASSPULSE_DATASETS`` (default ``../shared/datasets``); fails under CI when missing."""
    path = _datasets_dir()
    require(path.is_dir(), f"datasets folder {path} is missing (set CLASSPULSE_DATASETS)")
    return path


@pytest.fixture(scope="session")
def jaffe_dir(datasets_dir: Path) -> Path:
    path = datasets_dir / "jaffe"
    require(any(path.glob("*.tiff")), f"JAFFE faces missing in {path}")
    return path


@pytest.fixture(scope="session")
def taiwanese_faces(datasets_dir: Path) -> Path:
    path = datasets_dir / "taiwanese" / "faces"
    require(any(path.glob("*.jpg")), f"Taiwanese faces missing in {path}")
    return path


@pytest.fixture(scope="session")
def fer2013_csv(datasets_dir: Path) -> Path:
    path = datasets_dir / "fer2013" / "fer2013.csv.gz"
    require(path.is_file(), f"{path} is missing")
    return path
