"""Tiny datasets in the exact on-disk formats the readers accept, written into ``tmp_path``."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import cv2
import numpy as np

FER_HEADER = ["emotion", "pixels", "Usage"]
FERPLUS_HEADER = [
    "Usage",
    "Image name",
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
]


def synthetic_face(rng: np.random.Generator, expression: int, size: int = 48) -> np.ndarray:
    """A gray oval 'face' whose mouth curve depends on ``expression`` — learnable, not random."""
    image = np.full((size, size), 40, np.uint8)
    centre = (size // 2, size // 2)
    cv2.ellipse(image, centre, (size * 3 // 8, size * 7 // 16), 0, 0, 360, 170, -1)
    eye_y = size * 3 // 8
    for eye_x in (size * 3 // 8, size * 5 // 8):
        cv2.circle(image, (eye_x, eye_y), max(1, size // 16), 30, -1)
    mouth_y = size * 11 // 16
    bend = (expression - 1) * size // 10
    points = np.array(
        [[size * 3 // 8, mouth_y], [size // 2, mouth_y + bend], [size * 5 // 8, mouth_y]], np.int32
    )
    cv2.polylines(image, [points], False, 20, max(1, size // 24))
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def write_fer2013(
    folder: Path,
    num_train: int = 48,
    num_test: int = 24,
    seed: int = 0,
    gzipped: bool = True,
    num_private: int = 0,
) -> tuple[Path, Path]:
    """fer2013.csv(.gz) + fer2013new.csv; emotions 3 (happy), 4 (sad), 0 (angry) in turn.

    Rows are Training, then PublicTest, then ``num_private`` PrivateTest (Kaggle's full file)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / ("fer2013.csv.gz" if gzipped else "fer2013.csv")
    rows, votes = [], []
    codes = (3, 4, 0)  # happy → interested, sad → bored, angry → confused
    ferplus_column = {3: 1, 4: 3, 0: 4}  # happiness, sadness, anger: index among the 10 votes
    for index in range(num_train + num_test + num_private):
        expression = index % 3
        face = synthetic_face(rng, expression)
        usage = (
            "Training"
            if index < num_train
            else "PublicTest"
            if index < num_train + num_test
            else "PrivateTest"
        )
        rows.append([codes[expression], " ".join(map(str, face.ravel())), usage])
        vote = [0] * 10
        vote[ferplus_column[codes[expression]]] = 8
        vote[0] = 2  # two annotators said neutral
        votes.append([usage, f"fer{index:07d}.png", *vote])
    opener = gzip.open if gzipped else open
    with opener(csv_path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FER_HEADER)
        writer.writerows(rows)
    ferplus = folder / "fer2013new.csv"
    with open(ferplus, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FERPLUS_HEADER)
        writer.writerows(votes)
    return csv_path, ferplus


JAFFE_CODES = ("HA", "SA", "AN", "NE", "SU", "FE", "DI")


def write_jaffe(folder: Path, subjects: tuple[str, ...] = ("KA", "KL", "YM", "NA", "TM")) -> Path:
    """256×256 TIFFs named ``SUBJECT.CODEn.ID.tiff`` like JAFFE's."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    number = 1
    for subject in subjects:
        for code in JAFFE_CODES:
            expression = {"HA": 0, "SA": 1, "AN": 2}.get(code, 0)
            face = synthetic_face(rng, expression, size=256)
            cv2.imwrite(str(folder / f"{subject}.{code}1.{number}.tiff"), face)
            number += 1
    (folder / "README.txt").write_text("not an image: readers must skip it")
    return folder


def write_class_folders(
    folder: Path, classes: tuple[str, ...], per_class: int = 4, subject_names: bool = False
) -> Path:
    """``class/*.png``; with ``subject_names`` files are named like CK+ (``S005_001_00000011.png``)."""
    rng = np.random.default_rng(2)
    for class_index, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            face = synthetic_face(rng, class_index % 3, size=64)
            stem = f"S{10 + i:03d}_00{class_index}_{i:08d}" if subject_names else f"img{i}"
            cv2.imwrite(str(folder / name / f"{stem}.png"), face)
    return folder
