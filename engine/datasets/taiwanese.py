"""The Taiwanese Facial Expression Image Database: ``PPTVEnn.jpg`` files, posed by 29 performers.

PP is the performer (the subject: splits never put one performer on both sides), T the kind of
performance, V the view (1 front), E the expression (a neutral, b happy, c sad, d angry,
e disgusted, f fearful, g surprised; ``0`` = no label, skipped), nn a serial number. Labels are the
posed expression, the one the performer was asked for: what a class built from these faces shows.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.datasets.base import FaceDataset
from engine.datasets.images import PhotoFace, read_photos

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
    """The dataset (live-path crops) and each photo with its box, in the same order."""
    return read_photos("taiwanese", taiwanese_files(root))


def read_taiwanese(root: str | Path) -> FaceDataset:
    return read_taiwanese_photos(root)[0]
