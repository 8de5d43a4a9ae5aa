"""The distillation lever of the recipe: teachers' probabilities blend into stage 1's targets."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from engine.datasets.base import FaceDataset
from engine.preprocess import preprocess_faces
from engine.training.recipe import Recipe, teacher_targets

NAMES = ("neutral", "happy", "sad")


def _dataset(num_faces: int = 6) -> FaceDataset:
    rng = np.random.default_rng(0)
    labels = np.eye(len(NAMES), dtype=np.float32)[rng.integers(0, len(NAMES), num_faces)]
    faces = rng.integers(0, 256, (num_faces, 48, 48), dtype=np.uint8)
    return FaceDataset(
        "tiny", faces, labels, NAMES, np.array([""] * num_faces), np.array([""] * num_faces)
    )


def _teacher(folder: Path, bias: list[float], outputs: int = len(NAMES)) -> None:
    """A still classifier that says the same distribution for every face (softmax of ``bias``)."""
    folder.mkdir()
    inputs = keras.Input((48, 48, 1))
    flat = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(outputs, activation="softmax", kernel_initializer="zeros")
    model = keras.Model(inputs, dense(flat))
    dense.bias.assign(np.array(bias[:outputs], np.float32))
    model.save(folder / "stills_best.keras")


def test_without_teachers_the_targets_are_the_labels() -> None:
    train = _dataset()
    assert teacher_targets(train, Recipe()) is train.labels


def test_teachers_mean_blends_into_the_labels_by_the_weight(tmp_path: Path) -> None:
    train = _dataset()
    _teacher(tmp_path / "a", [0.0, 0.0, 0.0])  # uniform
    _teacher(tmp_path / "b", [np.log(4.0), 0.0, 0.0])  # 4:1:1
    recipe = Recipe(distill_from=f"{tmp_path / 'a'},{tmp_path / 'b'}", distill_weight=0.25)
    targets = teacher_targets(train, recipe)
    mean = (np.full(3, 1 / 3) + np.array([4, 1, 1]) / 6) / 2
    np.testing.assert_allclose(targets, 0.75 * train.labels + 0.25 * mean, atol=1e-5)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)


def test_a_teacher_over_other_labels_is_refused(tmp_path: Path) -> None:
    _teacher(tmp_path / "eight", [0.0] * 8, outputs=8)
    recipe = Recipe(distill_from=str(tmp_path / "eight"))
    with pytest.raises(ValueError, match=r"over the 3 training labels\. Received: .*8 outputs"):
        teacher_targets(_dataset(), recipe)


def test_each_teacher_reads_faces_as_its_own_run_preprocessed_them(tmp_path: Path) -> None:
    """A student trained with CLAHE (``equalize``) still asks a plain teacher about plain faces,
    and a teacher whose run used CLAHE about equalised ones: ``recipe.json`` of the teacher's run."""
    train = _dataset()
    expected = {}
    for name, equalize in (("plain", False), ("clahe", True)):
        folder = tmp_path / name
        folder.mkdir()
        inputs = keras.Input((48, 48, 1))
        dense = keras.layers.Dense(3, activation="softmax", kernel_initializer="glorot_uniform")
        teacher = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
        teacher.save(folder / "stills_best.keras")
        if equalize:
            (folder / "recipe.json").write_text(json.dumps({"equalize": True}))
        faces = preprocess_faces(train.faces, equalize=equalize)
        expected[name] = teacher.predict(faces, verbose=0)
    recipe = Recipe(distill_from=f"{tmp_path / 'plain'},{tmp_path / 'clahe'}", equalize=True)
    targets = teacher_targets(train, recipe)
    mean = (expected["plain"] + expected["clahe"]) / 2
    np.testing.assert_allclose(targets, 0.5 * train.labels + 0.5 * mean, atol=1e-5)
