"""Where classpulse finds the shared datasets: one setting, ``CLASSPULSE_DATASETS``."""

from __future__ import annotations

import os
from pathlib import Path

#: Relative defaults are resolved from the repository root (the parent of ``engine/``).
DEFAULT_DATASETS = "../shared/datasets"


def datasets_dir() -> Path:
    """The datasets folder: ``$CLASSPULSE_DATASETS`` or ``../shared/datasets`` beside the repo."""
    value = os.environ.get("CLASSPULSE_DATASETS", DEFAULT_DATASETS)
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (Path(__file__).resolve().parent.parent / path).resolve()
    return path
