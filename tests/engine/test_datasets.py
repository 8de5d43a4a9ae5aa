"""Dataset readers on tiny fixtures in their exact formats, and a smoke test on the real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import (
    EMOTIONS,
    load_mapping,
    read_ckplus,
    read_class_folders,
    read_dataset,
    read_fer2013,
    read_jaffe,
    split_by_subject,
    to_states,
)
from tests.engine.fixtures import write_class_folders, write_fer2013, write_jaffe


def test_fer2013_hard_labels_and_usage_split(tmp_path: Path) -> None:
    csv_path, _ = write_fer2013(tmp_path, num_train=6, num_test=3)
    dataset = read_fer2013(csv_path)
    assert dataset.faces.shape == (9, 48, 48) and dataset.faces.dtype == np.uint8
    assert list(dataset.splits) == ["train"] * 6 + ["test"] * 3
    assert dataset.label_names[dataset.labels[0].argmax()] == "happy"
    assert dataset.label_names[dataset.labels[1].argmax()] == "sad"
    train, test = split_by_subject(dataset)
    assert (len(train), len(test)) == (6, 3)


def test_ferplus_votes_become_soft_labels(tmp_path: Path) -> None:
    csv_path, ferplus = write_fer2013(tmp_path, num_train=6, num_test=3, gzipped=False)
    dataset = read_fer2013(csv_path, ferplus)
    assert dataset.label_names == EMOTIONS
    np.testing.assert_allclose(dataset.labels.sum(axis=1), 1.0, rtol=1e-6)
    first = dict(zip(EMOTIONS, dataset.labels[0], strict=True))
    assert first["happy"] == pytest.approx(0.8) and first["neutral"] == pytest.approx(0.2)
    states, keep = to_states(dataset, load_mapping())
    assert keep.all()
    np.testing.assert_allclose(states[0], [1.0, 0.0, 0.0])  # happy + neutral → interested
    np.testing.assert_allclose(states[1], [0.2, 0.8, 0.0])  # sad (+ neutral) → bored


def test_ferplus_misaligned_file_is_refused(tmp_path: Path) -> None:
    csv_path, ferplus = write_fer2013(tmp_path, num_train=6, num_test=3)
    lines = ferplus.read_text().splitlines()
    ferplus.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"row-aligned.*Received: 8 rows"):
        read_fer2013(csv_path, ferplus)


def test_fer2013_bad_header_names_what_was_expected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("label,image\n1,2\n")
    with pytest.raises(ValueError, match=r"emotion,pixels,Usage.*Received"):
        read_fer2013(bad)


def test_jaffe_codes_and_subjects(tmp_path: Path) -> None:
    dataset = read_jaffe(write_jaffe(tmp_path / "jaffe"))
    assert len(dataset) == 35 and set(dataset.subjects) == {"KA", "KL", "YM", "NA", "TM"}
    emotions = {dataset.label_names[i] for i in dataset.hard_labels()}
    assert emotions == {"happy", "sad", "angry", "neutral", "surprise", "fear", "disgust"}
    train, test = split_by_subject(dataset)
    assert not set(train.subjects) & set(test.subjects)
    assert len(set(test.subjects)) == 1 and len(train) + len(test) == len(dataset)


def test_ckplus_subjects_from_file_names(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "ck", ("anger", "happy", "sadness"), subject_names=True)
    dataset = read_ckplus(root)
    assert set(dataset.label_names) == {"angry", "happy", "sad"}
    assert set(dataset.subjects) == {"S010", "S011", "S012", "S013"}
    assert read_dataset(root).name == "ckplus"  # auto-detected


def test_class_folders_with_state_names(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "states", ("bored", "confused", "interested"))
    dataset = read_class_folders(root)
    states, keep = to_states(dataset, load_mapping())
    assert keep.all() and states.shape == (12, 3)
    assert list(states.argmax(axis=1)) == [1] * 4 + [2] * 4 + [0] * 4


def test_custom_mapping_and_bad_mapping(tmp_path: Path) -> None:
    custom = tmp_path / "mapping.json"
    custom.write_text(json.dumps({"neutral": "bored", "happiness": "interested"}))
    assert load_mapping(custom) == {"neutral": "bored", "happy": "interested"}
    custom.write_text(json.dumps({"neutral": "sleepy"}))
    with pytest.raises(ValueError, match=re.escape("Received: {'neutral': 'sleepy'}")):
        load_mapping(custom)


def test_default_mapping_is_documented_default() -> None:
    mapping = load_mapping()
    assert {k for k, v in mapping.items() if v == "interested"} == {"neutral", "happy", "surprise"}
    assert {k for k, v in mapping.items() if v == "bored"} == {"sad", "contempt"}
    assert {k for k, v in mapping.items() if v == "confused"} == {"angry", "disgust", "fear"}


def test_read_dataset_refuses_missing_and_unknown(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        read_dataset(tmp_path / "nothing")
    with pytest.raises(ValueError, match="dataset kind"):
        read_dataset(tmp_path, kind="imagenet")
    with pytest.raises(ValueError, match="no images"):
        read_dataset(tmp_path)


@pytest.mark.datasets
def test_real_fer2013_and_jaffe(datasets_dir: Path) -> None:
    fer = read_dataset(datasets_dir / "fer2013")  # FER+ votes picked up beside the CSV
    assert fer.name == "fer2013+ferplus"
    assert 28_000 < (fer.splits == "train").sum() <= 28_558
    assert 3_500 < (fer.splits == "test").sum() <= 3_579
    states, _ = to_states(fer, load_mapping())
    share = (states.argmax(axis=1) == 0).mean()
    assert 0.70 < share < 0.80  # FER+ mapped to states is ~75 % interested
    jaffe = read_dataset(datasets_dir / "jaffe")
    assert len(jaffe) == 213 and len(set(jaffe.subjects)) == 10
    assert jaffe.faces.std() > 20  # real crops, not blank
