"""Reading face photos from disk: decode gray, find the face with the live face stage, crop to 48×48.

A photo goes through a fresh stream of the live ``FaceDetector`` (its default stage, settings and
margin) as the first frame of a camera would, so training, evaluation and the bot see the same
framing: a model scored on crops made another way would be scored on something the bot never sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engine.datasets.base import EMOTIONS, FaceDataset
from engine.faces import DetectorSettings, FaceDetector
from engine.preprocess import crop_face
from engine.types import FACE_SIZE, Box


@lru_cache(maxsize=1)
def live_detector() -> FaceDetector:
    """The face stage an ``engagement`` bot runs (hybrid: ``bot.session.settings.FACE_STAGES``),
    one per process, so evaluation and training crop photos as that bot crops its cameras."""
    return FaceDetector(DetectorSettings(stage="hybrid"))


def read_gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"Expected an image file OpenCV can read. Received: {path}")
    return image


@dataclass(frozen=True, slots=True, eq=False)
class PhotoFace:
    """A photo, the face box the live detector found in it (``None``: no face found) and the crop."""

    gray: np.ndarray
    box: Box | None
    crop: np.ndarray


def live_face(gray: np.ndarray) -> tuple[Box, np.ndarray] | None:
    """The largest face the live stage finds in a whole photo, seen as a camera's first frame:
    its box and the live crop; ``None`` when it finds no face."""
    crops = live_detector().stream("photo").push(gray, 0.0).crops
    if not crops:
        return None
    largest = max(crops, key=lambda c: c.box.area)
    return largest.box, largest.crop


def find_face(gray: np.ndarray) -> Box | None:
    """The largest face the live stage finds in a whole photo, or ``None``."""
    found = live_face(gray)
    return None if found is None else found[0]


def photo_face(gray: np.ndarray) -> PhotoFace:
    """The live path's crop of a photo's largest face; the centre square when none is found.

    Images already 48×48 (or smaller than a face detector can use) are taken as crops as they are.
    """
    height, width = gray.shape
    if max(height, width) <= 2 * FACE_SIZE:
        crop = cv2.resize(gray, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
        return PhotoFace(gray, Box(0, 0, width, height), crop)
    found = live_face(gray)
    if found is not None:
        return PhotoFace(gray, *found)
    side = min(height, width)
    centre = Box((width - side) // 2, (height - side) // 2, side, side)
    return PhotoFace(gray, None, crop_face(gray, centre, margin=0.0))


def face_crop_from_photo(gray: np.ndarray) -> np.ndarray:
    """48×48 crop of the photo's largest face as the live path makes it (see ``photo_face``)."""
    return photo_face(gray).crop


def read_photos(
    name: str, files: list[tuple[Path, str, str]]
) -> tuple[FaceDataset, list[PhotoFace]]:
    """``(path, subject, emotion)`` files → the dataset of their live-path crops (one-hot labels
    over ``EMOTIONS``) and each photo with its box, in the same order.

    Photos in which the live detector finds no face are left out: the bot would never score them.
    """
    rows, photos = [], []
    for path, subject, emotion in tqdm(files, desc=name, leave=False, disable=None):
        photo = photo_face(read_gray(path))
        if photo.box is not None:
            rows.append((subject, emotion))
            photos.append(photo)
    labels = np.zeros((len(rows), len(EMOTIONS)), np.float32)
    labels[np.arange(len(rows)), [EMOTIONS.index(e) for _, e in rows]] = 1.0
    dataset = FaceDataset(
        name,
        np.stack([p.crop for p in photos])
        if photos
        else np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8),
        labels,
        EMOTIONS,
        np.array([subject for subject, _ in rows]),
        np.array([""] * len(rows)),
    )
    return dataset, photos
