"""Reading face photos from disk: decode gray, find the face, crop it to 48×48."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from engine.preprocess import crop_face
from engine.types import FACE_SIZE, Box


@lru_cache(maxsize=1)
def _frontal_face_cascade() -> cv2.CascadeClassifier:
    folder = cv2.data.haarcascades  # type: ignore[attr-defined]
    path = Path(folder) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"Expected a Haar cascade at {path}. Received: an empty classifier")
    return cascade


def read_gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"Expected an image file OpenCV can read. Received: {path}")
    return image


def face_crop_from_photo(gray: np.ndarray) -> np.ndarray:
    """48×48 crop of the largest detected face; the centre square when none is found.

    Images already 48×48 (or smaller than a face detector can use) are taken as crops as they are.
    """
    height, width = gray.shape
    if max(height, width) <= 2 * FACE_SIZE:
        return cv2.resize(gray, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    min_side = max(24, min(height, width) // 5)
    found = _frontal_face_cascade().detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
    )
    if len(found):
        x, y, w, h = max(found, key=lambda b: int(b[2]) * int(b[3]))
        box = Box(int(x), int(y), int(w), int(h))
    else:
        side = min(height, width)
        box = Box((width - side) // 2, (height - side) // 2, side, side)
    return crop_face(gray, box)
