"""FER2013 in Kaggle's CSV layout (``emotion,pixels,Usage``), optionally with FER+ vote files."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np

from engine.datasets.base import EMOTIONS, FaceDataset
from engine.types import FACE_SIZE

#: Kaggle's emotion codes 0..6.
FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "test", "PrivateTest": "private"}
#: FER+ vote columns in the order of its file, translated to canonical names.
FERPLUS_COLUMNS = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "contempt": "contempt",
}


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_fer2013(csv_path: str | Path, ferplus_path: str | Path | None = None) -> FaceDataset:
    """Read FER2013; with ``ferplus_path`` the labels become FER+'s 10-annotator vote shares.

    FER+ rows whose votes are mostly ``unknown`` / ``NF`` (not a face) are dropped.
    """
    csv_path = Path(csv_path)
    with _open_text(csv_path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise ValueError(
                f"Expected a FER2013 CSV with header 'emotion,pixels,Usage' in {csv_path}. "
                f"Received: {header}"
            )
        emotions, pixel_rows, usages = [], [], []
        for line_number, row in enumerate(reader, start=2):
            if len(row) < 3:
                raise ValueError(
                    f"Expected 3 columns on line {line_number} of {csv_path}. Received: {row[:3]}"
                )
            emotions.append(int(row[0]))
            pixel_rows.append(row[1])
            usages.append(row[2].strip())
    pixels = np.array(" ".join(pixel_rows).split(), dtype=np.uint8)
    if pixels.size != len(pixel_rows) * FACE_SIZE * FACE_SIZE:
        raise ValueError(
            f"Expected {FACE_SIZE * FACE_SIZE} pixels per row in {csv_path}. "
            f"Received: {pixels.size} values for {len(pixel_rows)} rows"
        )
    faces = pixels.reshape(-1, FACE_SIZE, FACE_SIZE)
    splits = np.array([USAGE_TO_SPLIT.get(u, "") for u in usages])
    subjects = np.array([""] * len(faces))

    if ferplus_path is None:
        labels = np.zeros((len(faces), len(FER_EMOTIONS)), np.float32)
        labels[np.arange(len(faces)), np.array(emotions)] = 1.0
        return FaceDataset("fer2013", faces, labels, FER_EMOTIONS, subjects, splits)

    votes, keep = _read_ferplus(Path(ferplus_path), usages)
    order = [EMOTIONS.index(name) for name in FERPLUS_COLUMNS.values()]
    labels = np.zeros((len(faces), len(EMOTIONS)), np.float32)
    labels[:, order] = votes
    labels = labels[keep] / labels[keep].sum(axis=1, keepdims=True)
    return FaceDataset(
        "fer2013+ferplus", faces[keep], labels, EMOTIONS, subjects[keep], splits[keep]
    )


def read_fer2013_both(
    csv_path: str | Path, ferplus_path: str | Path
) -> tuple[FaceDataset, FaceDataset]:
    """The same faces twice, over ``EMOTIONS``: FER's own one-hot labels and FER+'s vote shares.

    Rows FER+ drops (mostly ``unknown`` / not a face) are dropped from both, so the two are
    row-aligned; training blends them and evaluation reports each.
    """
    fer = read_fer2013(csv_path)
    with _open_text(Path(csv_path)) as handle:
        reader = csv.reader(handle)
        next(reader)
        usages = [row[2].strip() for row in reader]
    votes, keep = _read_ferplus(Path(ferplus_path), usages)
    order = [EMOTIONS.index(name) for name in FERPLUS_COLUMNS.values()]
    plus = np.zeros((len(fer), len(EMOTIONS)), np.float32)
    plus[:, order] = votes
    plus = plus[keep] / plus[keep].sum(axis=1, keepdims=True)
    own = np.zeros((len(fer), len(EMOTIONS)), np.float32)
    own[:, [EMOTIONS.index(name) for name in FER_EMOTIONS]] = fer.labels
    own = own[keep]
    faces, subjects, splits = fer.faces[keep], fer.subjects[keep], fer.splits[keep]
    return (
        FaceDataset("fer2013", faces, own, EMOTIONS, subjects, splits),
        FaceDataset("fer2013+ferplus", faces, plus, EMOTIONS, subjects, splits),
    )


def _read_ferplus(path: Path, usages: list[str]) -> tuple[np.ndarray, np.ndarray]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    if len(rows) != len(usages):
        raise ValueError(
            f"Expected FER+ votes row-aligned with the FER2013 CSV ({len(usages)} rows) in {path}. "
            f"Received: {len(rows)} rows"
        )
    missing = [c for c in (*FERPLUS_COLUMNS, "unknown", "NF") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(
            f"Expected FER+ columns {missing} in {path}. Received: {reader.fieldnames}"
        )
    votes = np.array([[float(r[c]) for c in FERPLUS_COLUMNS] for r in rows], np.float32)
    other = np.array([float(r["unknown"]) + float(r["NF"]) for r in rows], np.float32)
    mismatched = [i for i, r in enumerate(rows) if r["Usage"].strip() != usages[i]]
    if mismatched:
        raise ValueError(
            f"Expected FER+ 'Usage' to match FER2013 row by row in {path}. "
            f"Received: first mismatch on data row {mismatched[0] + 1}"
        )
    keep = (votes.sum(axis=1) > 0) & (votes.sum(axis=1) >= other)
    return votes, keep
