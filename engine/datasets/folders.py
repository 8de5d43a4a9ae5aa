"""JAFFE (codes in file names), CK+ (emotion folders, subject ``S###``) and any ``class/*.png`` tree."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.datasets.base import EMOTIONS, FaceDataset, canonical_label
from engine.datasets.images import PhotoFace, face_crop_from_photo, photo_face, read_gray

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm"}
JAFFE_NAME = re.compile(r"^(?P<subject>[A-Z]{2})\.(?P<code>[A-Z]{2})\d+\.\d+\.tiff?$")
CKPLUS_SUBJECT = re.compile(r"(S\d{3})")


def _crops(paths: list[Path], desc: str) -> np.ndarray:
    faces = [
        face_crop_from_photo(read_gray(p))
        for p in tqdm(paths, desc=desc, leave=False, disable=None)
    ]
    return np.stack(faces) if faces else np.zeros((0, 48, 48), np.uint8)


def _one_hot(names: list[str], vocabulary: tuple[str, ...]) -> np.ndarray:
    labels = np.zeros((len(names), len(vocabulary)), np.float32)
    labels[np.arange(len(names)), [vocabulary.index(n) for n in names]] = 1.0
    return labels


def read_jaffe(root: str | Path) -> FaceDataset:
    """JAFFE: ``SUBJECT.EMOTIONn.ID.tiff``, EMOTION in AN DI FE HA NE SA SU. No split of its own."""
    root = Path(root)
    paths, subjects, emotions = [], [], []
    for path in sorted(root.iterdir()):
        match = JAFFE_NAME.match(path.name)
        if match is None:
            continue
        paths.append(path)
        subjects.append(match["subject"])
        emotions.append(canonical_label(match["code"]))
    if not paths:
        raise ValueError(
            f"Expected JAFFE files named like 'KA.AN1.39.tiff' in {root}. Received: none matching"
        )
    return FaceDataset(
        "jaffe",
        _crops(paths, "jaffe"),
        _one_hot(emotions, EMOTIONS),
        EMOTIONS,
        np.array(subjects),
        np.array([""] * len(paths)),
    )


def read_jaffe_photos(root: str | Path) -> tuple[FaceDataset, list[PhotoFace]]:
    """JAFFE through the live crop path, with each photo and its box (for framing tests).

    Photos in which the live detector finds no face are left out: the bot would never score them.
    """
    root = Path(root)
    rows, photos = [], []
    for path in sorted(root.iterdir()):
        match = JAFFE_NAME.match(path.name)
        if match is None:
            continue
        photo = photo_face(read_gray(path))
        if photo.box is None:
            continue
        rows.append((match["subject"], canonical_label(match["code"])))
        photos.append(photo)
    if not rows:
        raise ValueError(
            f"Expected JAFFE files named like 'KA.AN1.39.tiff' with a findable face in {root}. "
            "Received: none"
        )
    dataset = FaceDataset(
        "jaffe",
        np.stack([p.crop for p in photos]),
        _one_hot([e for _, e in rows], EMOTIONS),
        EMOTIONS,
        np.array([s for s, _ in rows]),
        np.array([""] * len(rows)),
    )
    return dataset, photos


def read_class_folders(
    root: str | Path, name: str | None = None, subject_pattern: re.Pattern[str] | None = None
) -> FaceDataset:
    """Any tree of ``class_name/*.png|jpg``; class names are emotions or states.

    ``subject_pattern``'s first group, searched in each file name, names the person.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"Expected a folder of class folders. Received: {root}")
    paths, classes, subjects = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            paths.append(path)
            classes.append(canonical_label(folder.name))
            found = subject_pattern.search(path.name) if subject_pattern else None
            subjects.append(found.group(1) if found else "")
    if not paths:
        raise ValueError(
            f"Expected class folders holding images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {root}. "
            "Received: no images"
        )
    vocabulary = tuple(sorted(set(classes)))
    return FaceDataset(
        name or root.name,
        _crops(paths, root.name),
        _one_hot(classes, vocabulary),
        vocabulary,
        np.array(subjects),
        np.array([""] * len(paths)),
    )


def read_ckplus(root: str | Path) -> FaceDataset:
    """CK+ as emotion folders (anger, contempt, disgust, fear, happy, sadness, surprise, ...)."""
    return read_class_folders(root, "ckplus", CKPLUS_SUBJECT)
