"""Dataset readers: FER2013 (+FER+), JAFFE, CK+ and class-folder trees, all to ``FaceDataset``."""

from __future__ import annotations

from pathlib import Path

from engine.datasets.base import (
    EMOTIONS,
    FaceDataset,
    concat_datasets,
    load_mapping,
    split_by_subject,
    split_groups,
    state_matrix,
    to_states,
    true_states,
)
from engine.datasets.fer2013 import read_fer2013, read_fer2013_both
from engine.datasets.folders import read_ckplus, read_class_folders, read_jaffe, read_jaffe_photos
from engine.datasets.taiwanese import read_taiwanese, read_taiwanese_photos

__all__ = [
    "EMOTIONS",
    "FaceDataset",
    "concat_datasets",
    "load_mapping",
    "read_ckplus",
    "read_class_folders",
    "read_dataset",
    "read_fer2013",
    "read_fer2013_both",
    "read_jaffe",
    "read_jaffe_photos",
    "read_taiwanese",
    "read_taiwanese_photos",
    "split_by_subject",
    "split_groups",
    "state_matrix",
    "to_states",
    "true_states",
]

DATASET_KINDS = ("auto", "fer2013", "jaffe", "taiwanese", "ckplus", "folders")


def read_dataset(
    path: str | Path, kind: str = "auto", ferplus: str | Path | None = None
) -> FaceDataset:
    """Read ``path`` as ``kind``; ``auto`` guesses from what is there.

    auto: a ``.csv``/``.csv.gz`` file → FER2013 (with ``fer2013new.csv`` beside it as FER+ votes
    unless ``ferplus`` names another); a folder of ``XX.YYn.N.tiff`` → JAFFE; a folder of class
    folders whose files carry ``S###`` → CK+; else class folders.
    """
    path = Path(path)
    if kind not in DATASET_KINDS:
        raise ValueError(f"Expected a dataset kind in {DATASET_KINDS}. Received: {kind!r}")
    if not path.exists():
        raise ValueError(f"Expected a dataset file or folder. Received: {path} (not found)")
    if kind == "auto":
        kind = _guess_kind(path)
    if kind == "fer2013":
        if path.is_dir():
            path = path / "fer2013.csv.gz"
        if ferplus is None and (path.parent / "fer2013new.csv").is_file():
            ferplus = path.parent / "fer2013new.csv"
        return read_fer2013(path, ferplus)
    if kind == "jaffe":
        return read_jaffe(path)
    if kind == "taiwanese":
        return read_taiwanese(path)
    if kind == "ckplus":
        return read_ckplus(path)
    return read_class_folders(path)


def _guess_kind(path: Path) -> str:
    if path.is_file():
        if path.name.endswith((".csv", ".csv.gz")):
            return "fer2013"
        raise ValueError(f"Expected a FER2013 .csv/.csv.gz file or a folder. Received: {path}")
    if (path / "fer2013.csv.gz").is_file() or (path / "fer2013.csv").is_file():
        return "fer2013"
    if any(p.name.endswith((".tiff", ".tif")) and p.name.count(".") == 3 for p in path.iterdir()):
        return "jaffe"
    if (path / "faces").is_dir() and (path / "ratings.csv").is_file():
        return "taiwanese"
    if any("S0" in p.name or "S1" in p.name for p in path.glob("*/*")):
        return "ckplus"
    return "folders"
