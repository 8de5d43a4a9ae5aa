"""Face datasets as arrays, label vocabularies, the emotion→state mapping and subject-grouped splits."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from engine.types import CLASSES, FACE_SIZE

#: Canonical emotion names. Readers translate their dataset's names with ``ALIASES``.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happy",
    "surprise",
    "sad",
    "angry",
    "disgust",
    "fear",
    "contempt",
)

ALIASES: dict[str, str] = {
    # FER2013 / FER+ spellings
    "happiness": "happy",
    "sadness": "sad",
    "anger": "angry",
    # CK+ folder names ("anger" is above)
    "fearful": "fear",
    "surprised": "surprise",
    # JAFFE file-name codes
    "ne": "neutral",
    "ha": "happy",
    "su": "surprise",
    "sa": "sad",
    "an": "angry",
    "di": "disgust",
    "fe": "fear",
}


def canonical_label(name: str) -> str:
    """``"Happiness"`` → ``"happy"``; state names and unknown names pass through lower-cased."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


@dataclass(frozen=True)
class FaceDataset:
    """Gray 48×48 faces with a (possibly soft) label distribution per face.

    ``labels[i]`` is a distribution over ``label_names`` (one-hot for hard labels, vote shares for
    FER+). ``subjects`` names the person (``""`` when unknown) and ``splits`` the dataset's own
    split (``"train"``, ``"test"`` or ``""`` when it has none).
    """

    name: str
    faces: np.ndarray  # uint8 (N, 48, 48)
    labels: np.ndarray  # float32 (N, L)
    label_names: tuple[str, ...]
    subjects: np.ndarray  # str (N,)
    splits: np.ndarray  # str (N,)

    def __post_init__(self) -> None:
        n = len(self.faces)
        if self.faces.dtype != np.uint8 or self.faces.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(
                f"Expected faces uint8 (N, 48, 48). Received: {self.faces.dtype} {self.faces.shape}"
            )
        if self.labels.shape != (n, len(self.label_names)):
            raise ValueError(
                f"Expected labels of shape ({n}, {len(self.label_names)}). "
                f"Received: {self.labels.shape}"
            )
        if len(self.subjects) != n or len(self.splits) != n:
            raise ValueError("Expected one subject and one split entry per face.")

    def __len__(self) -> int:
        return len(self.faces)

    def subset(self, mask: np.ndarray, name: str | None = None) -> FaceDataset:
        return FaceDataset(
            name or self.name,
            self.faces[mask],
            self.labels[mask],
            self.label_names,
            self.subjects[mask],
            self.splits[mask],
        )

    def hard_labels(self) -> np.ndarray:
        return self.labels.argmax(axis=1)


def load_mapping(path: str | Path | None = None) -> dict[str, str]:
    """Emotion→state mapping: the shipped default, or a JSON file ``{"emotion": "state", ...}``."""
    if path is None:
        text = (resources.files("engine") / "data" / "mapping.json").read_text()
        source = "engine/data/mapping.json"
    else:
        text = Path(path).read_text()
        source = str(path)
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"Expected a JSON object in {source}. Received: {type(raw).__name__}")
    mapping = {canonical_label(k): str(v) for k, v in raw.items() if not k.startswith("_")}
    bad = {k: v for k, v in mapping.items() if v not in CLASSES}
    if bad:
        raise ValueError(f"Expected every state in {CLASSES} in {source}. Received: {bad}")
    return mapping


def state_matrix(label_names: Sequence[str], mapping: Mapping[str, str]) -> np.ndarray:
    """(L, 3) matrix M so that ``labels @ M`` is the state distribution; unmapped labels drop out."""
    matrix = np.zeros((len(label_names), len(CLASSES)), np.float32)
    for row, name in enumerate(label_names):
        key = canonical_label(name)
        state = key if key in CLASSES else mapping.get(key)
        if state is not None:
            matrix[row, CLASSES.index(state)] = 1.0
    return matrix


def to_states(dataset: FaceDataset, mapping: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """State distributions (N, 3) and a mask of faces whose labels map to at least one state."""
    states = dataset.labels @ state_matrix(dataset.label_names, mapping)
    total = states.sum(axis=1)
    keep = total > 0
    states[keep] /= total[keep, np.newaxis]
    return states.astype(np.float32), keep


def concat_datasets(datasets: Sequence[FaceDataset], name: str | None = None) -> FaceDataset:
    """Stack datasets over the union of their label names (order of first appearance).

    Subjects are prefixed with their dataset's name (``"jaffe:KA"``), so people of different
    datasets never share a group and each face's source can be told.
    """
    names: list[str] = []
    for dataset in datasets:
        names += [n for n in dataset.label_names if n not in names]
    labels = []
    for dataset in datasets:
        block = np.zeros((len(dataset), len(names)), np.float32)
        block[:, [names.index(n) for n in dataset.label_names]] = dataset.labels
        labels.append(block)
    return FaceDataset(
        name or "+".join(d.name for d in datasets),
        np.concatenate([d.faces for d in datasets]),
        np.concatenate(labels),
        tuple(names),
        np.concatenate([np.char.add(f"{d.name}:", d.subjects.astype(str)) for d in datasets]),
        np.concatenate([d.splits for d in datasets]),
    )


def true_states(dataset: FaceDataset, mapping: Mapping[str, str]) -> np.ndarray:
    """Each face's most likely state (int index into ``CLASSES``) under its label distribution."""
    return (dataset.labels @ state_matrix(dataset.label_names, mapping)).argmax(axis=1)


def split_by_subject(
    dataset: FaceDataset, test_fraction: float = 0.2, seed: int = 0
) -> tuple[FaceDataset, FaceDataset]:
    """The dataset's own split when it has one, else ~80/20 by subject so nobody is in both.

    A dataset with its own split (FER2013's ``Usage``: Training, PublicTest, PrivateTest) gives
    its training rows and its other rows; it never falls back to a random split, which would put
    test faces into training. Faces without a subject are their own group (the best a folder of
    anonymous files allows).
    """
    if np.all(dataset.splits != "") and np.any(dataset.splits == "train"):
        is_train = dataset.splits == "train"
        return dataset.subset(is_train), dataset.subset(~is_train)
    return split_groups(dataset, test_fraction, seed)


def split_groups(
    dataset: FaceDataset, test_fraction: float = 0.2, seed: int = 0
) -> tuple[FaceDataset, FaceDataset]:
    """~``test_fraction`` of the subjects (of the faces, where subjects are unknown) held out."""
    groups = np.array(
        [s if s else f"__face{i}" for i, s in enumerate(dataset.subjects)], dtype=object
    )
    unique = np.array(sorted(set(groups)), dtype=object)
    rng = np.random.default_rng(seed)
    rng.shuffle(unique)
    num_test = max(1, round(len(unique) * test_fraction))
    test_groups = set(unique[:num_test])
    is_test = np.array([g in test_groups for g in groups])
    return dataset.subset(~is_test), dataset.subset(is_test)
