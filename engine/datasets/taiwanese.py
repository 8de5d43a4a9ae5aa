"""The Taiwanese Facial Expression Image Database: ``PPTVEnn.jpg`` files, posed by 29 performers.

PP is the performer (the subject: splits never put one performer on both sides), T the kind of
performance, V the view (1 front), E the expression (a neutral, b happy, c sad, d angry,
e disgusted, f fearful, g surprised; ``0`` = no label, skipped), nn a serial number. Labels are the
posed expression, the one the performer was asked for: what a class built from these faces shows.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.datasets.base import EMOTIONS, FaceDataset
from engine.datasets.images import PhotoFace, photo_face, read_gray

TAIWANESE_NAME = re.compile(
    r"^(?P<performer>\d{2})(?P<kind>\d)(?P<view>\d)(?P<code>[a-g0])\d+\.jpe?g$"
)
TAIWANESE_CODES = {
    "a": "neutral",
    "b": "happy",
    "c": "sad",
    "d": "angry",
    "e": "disgust",
    "f": "fear",
    "g": "surprise",
}


def taiwanese_files(root: str | Path) -> list[tuple[Path, str, str]]:
    """``(path, performer, emotion)`` for every labelled file under ``root`` (or ``root/faces``)."""
    root = Path(root)
    folder = root / "faces" if (root / "faces").is_dir() else root
    if not folder.is_dir():
        raise ValueError(f"Expected the Taiwanese faces folder. Received: {folder} (not a folder)")
    found = []
    for path in sorted(folder.iterdir()):
        match = TAIWANESE_NAME.match(path.name)
        if match is None or match["code"] == "0":
            continue
        found.append((path, f"TW{match['performer']}", TAIWANESE_CODES[match["code"]]))
    if not found:
        raise ValueError(
            f"Expected Taiwanese files named like '0111b01.jpg' in {folder}. Received: none matching"
        )
    return found


def read_taiwanese_photos(root: str | Path) -> tuple[FaceDataset, list[PhotoFace]]:
    """The dataset (live-path crops) and each photo with its detected box, in the same order.

    Photos in which the live detector finds no face are left out: the bot would never score them.
    """
    rows, photos = [], []
    for path, performer, emotion in tqdm(
        taiwanese_files(root), desc="taiwanese", leave=False, disable=None
    ):
        photo = photo_face(read_gray(path))
        if photo.box is None:
            continue
        rows.append((performer, emotion))
        photos.append(photo)
    labels = np.zeros((len(rows), len(EMOTIONS)), np.float32)
    labels[np.arange(len(rows)), [EMOTIONS.index(e) for _, e in rows]] = 1.0
    dataset = FaceDataset(
        "taiwanese",
        np.stack([p.crop for p in photos]) if photos else np.zeros((0, 48, 48), np.uint8),
        labels,
        EMOTIONS,
        np.array([p for p, _ in rows]),
        np.array([""] * len(rows)),
    )
    return dataset, photos


def read_taiwanese(root: str | Path) -> FaceDataset:
    return read_taiwanese_photos(root)[0]
