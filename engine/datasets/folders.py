"""JAFFE (codes in file names), CK+ (emotion folders, subject ``S###``) and any ``class/*.png`` tree."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.datasets.base import EMOTIONS, FaceDataset, canonical_label
from engine.datasets.images import PhotoFace, face_crop_from_photo, read_gray, read_photos

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


def jaffe_files(root: str | Path) -> list[tuple[Path, str, str]]:
    """``(path, subject, emotion)`` for every ``SUBJECT.EMOTIONn.ID.tiff`` file in ``root``."""
    root = Path(root)
    found = []
    for path in sorted(root.iterdir()):
        match = JAFFE_NAME.match(path.name)
        if match is not None:
            found.append((path, match["subject"], canonical_label(match["code"])))
    if not found:
        raise ValueError(
            f"Expected JAFFE files named like 'KA.AN1.39.tiff' in {root}. Received: none matching"
        )
    return found


def read_jaffe(root: str | Path) -> FaceDataset:
    """JAFFE: ``SUBJECT.EMOTIONn.ID.tiff``, EMOTION in AN DI FE HA NE SA SU. No split of its own.

    Every photo is kept (the centre square when no face is found); ``read_jaffe_photos`` keeps
    only the faces the live detector finds."""
    files = jaffe_files(root)
    return FaceDataset(
        "jaffe",
        _crops([path for path, _, _ in files], "jaffe"),
        _one_hot([emotion for _, _, emotion in files], EMOTIONS),
        EMOTIONS,
        np.array([subject for _, subject, _ in files]),
        np.array([""] * len(files)),
    )


def read_jaffe_photos(root: str | Path) -> tuple[FaceDataset, list[PhotoFace]]:
    """JAFFE through the live crop path, with each photo and its box (for framing tests)."""
    return read_photos("jaffe", jaffe_files(root))


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
