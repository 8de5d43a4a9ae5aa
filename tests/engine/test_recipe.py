"""The shipped recipe's parts: honest splits, the live crop for photos, augmentation, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import read_fer2013, read_fer2013_both, split_by_subject
from engine.datasets.taiwanese import taiwanese_files
from engine.training.augment import augment_faces
from tests.engine.fixtures import synthetic_face, write_fer2013

REPORT = Path(__file__).resolve().parents[2] / "engine" / "weights" / "report" / "report.json"


def test_fer2013_three_usages_keep_both_test_sets_out_of_training(tmp_path: Path) -> None:
    csv_path, _ = write_fer2013(tmp_path, num_train=9, num_test=6, num_private=3)
    dataset = read_fer2013(csv_path)
    assert list(dataset.splits) == ["train"] * 9 + ["test"] * 6 + ["private"] * 3
    train, held_out = split_by_subject(dataset)
    # Before: a third split value made the reader fall back to a random split, which put
    # PublicTest faces into training.
    assert len(train) == 9 and set(train.splits) == {"train"}
    assert len(held_out) == 9 and set(held_out.splits) == {"test", "private"}


def test_fer_and_ferplus_labels_stay_row_aligned(tmp_path: Path) -> None:
    csv_path, ferplus = write_fer2013(tmp_path, num_train=6, num_test=3, num_private=3)
    own, plus = read_fer2013_both(csv_path, ferplus)
    assert len(own) == len(plus) == 12
    np.testing.assert_array_equal(own.faces, plus.faces)
    assert own.label_names == plus.label_names
    # FER's own label is one-hot; FER+ has the two "neutral" votes beside it.
    assert own.label_names[own.labels[0].argmax()] == "happy" and own.labels[0].max() == 1.0
    assert plus.labels[0, plus.label_names.index("neutral")] == pytest.approx(0.2)


def test_taiwanese_names_give_performer_and_posed_expression(tmp_path: Path) -> None:
    faces = tmp_path / "faces"
    faces.mkdir()
    for name in ("0111a01.jpg", "0111d02.jpg", "2921g07.jpg", "0511001.jpg", "notes.txt"):
        (faces / name).write_bytes(b"")
    found = [(p.name, performer, emotion) for p, performer, emotion in taiwanese_files(tmp_path)]
    assert found == [
        ("0111a01.jpg", "TW01", "neutral"),
        ("0111d02.jpg", "TW01", "angry"),
        ("2921g07.jpg", "TW29", "surprise"),
    ]  # the unlabelled ``0`` file and other files are skipped


def test_taiwanese_folder_without_faces_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Expected Taiwanese files.*Received: none matching"):
        taiwanese_files(tmp_path)


def test_augmentation_reframes_each_face_differently_but_reproducibly() -> None:
    rng = np.random.default_rng(0)
    faces = np.stack([synthetic_face(rng, i % 3) for i in range(16)])
    first = augment_faces(faces, np.random.default_rng(1))
    again = augment_faces(faces, np.random.default_rng(1))
    assert first.shape == faces.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    changed = np.abs(first.astype(int) - faces.astype(int)).mean(axis=(1, 2))
    assert (changed > 2).all()  # every face moved or changed
    assert np.abs(first.astype(int) - faces.astype(int)).mean() < 60  # but is still that face


@pytest.mark.datasets
def test_recipe_splits_never_share_a_subject_or_a_test_face(datasets_dir: Path) -> None:
    from engine.training.corpus import load_corpus

    corpus = load_corpus(datasets_dir)
    train_subjects = set(corpus.train.subjects)
    for name in ("jaffe", "taiwanese"):
        test_subjects = {f"{name}:{s}" for s in corpus.test[name].dataset.subjects}
        validation_subjects = {
            f"{name}:{s}" for s in corpus.validation[f"{name}-val"].dataset.subjects
        }
        assert test_subjects and not test_subjects & train_subjects
        assert validation_subjects and not validation_subjects & train_subjects
    public = corpus.test["PublicTest (FER labels)"].dataset
    assert len(public) > 3000 and set(public.splits) == {"test"}
    # FER2013 itself holds ~250 PublicTest faces pixel-identical to Training faces; the recipe may
    # share those (they are the file's), never a PublicTest row itself.
    raw = read_fer2013(datasets_dir / "fer2013" / "fer2013.csv.gz")
    in_training_rows = {face.tobytes() for face in raw.faces[raw.splits == "train"]}
    in_train = {face.tobytes() for face in corpus.train.faces}
    shared = sum(face.tobytes() in in_train for face in public.faces)
    assert shared <= sum(face.tobytes() in in_training_rows for face in public.faces)
    assert len(corpus.test["jaffe"].photos) == len(corpus.test["jaffe"].dataset)


@pytest.mark.datasets
def test_shipped_report_matches_a_fresh_evaluation_of_a_public_test_slice(
    fer2013_csv: Path,
) -> None:
    from engine.datasets import load_mapping
    from engine.model import EmotionModel
    from engine.training.report import slice_figures

    report = json.loads(REPORT.read_text())
    committed = report["public_test_slice"]
    own, _ = read_fer2013_both(fer2013_csv, fer2013_csv.parent / "fer2013new.csv")
    public_test = own.subset(own.splits == "test")
    # Read as the committed report read it (the bot's int8 encoder on a CPU).
    model = EmotionModel.load(encoder_kind=report["encoder"])
    fresh = slice_figures(model, public_test, load_mapping())
    assert fresh["faces"] == committed["faces"]
    assert fresh["macro_f1"] == pytest.approx(committed["macro_f1"], abs=2e-3)
    assert fresh["accuracy"] == pytest.approx(committed["accuracy"], abs=2e-3)
    np.testing.assert_allclose(
        fresh["mean_probabilities"], committed["mean_probabilities"], atol=2e-3
    )


def test_cosine_schedule_decays_the_rate_over_the_run_and_a_bad_name_is_refused() -> None:
    from engine.training.recipe import Recipe, schedule_callbacks

    (scheduler,) = schedule_callbacks(Recipe(schedule="cosine", epochs=60, learning_rate=1e-3))
    rates = [scheduler.schedule(epoch) for epoch in (0, 30, 59)]
    assert rates[0] == pytest.approx(1e-3)
    assert rates[1] == pytest.approx(5e-4)
    assert 0 < rates[2] < 1e-5
    (plateau,) = schedule_callbacks(Recipe())
    assert plateau.__class__.__name__ == "ReduceLROnPlateau"
    with pytest.raises(
        ValueError, match=r"Expected a schedule in \('plateau', 'cosine'\)\. Received: 'step'"
    ):
        schedule_callbacks(Recipe(schedule="step"))


def test_corpus_export_packs_faces_losslessly() -> None:
    from engine.training.export_corpus import _pack, unpack

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    faces[0] = 255  # saturated and flat faces wrap around in the differences
    faces[1] = 0
    assert np.array_equal(unpack(_pack(faces), 5), faces)
