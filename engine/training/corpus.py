"""The shipped recipe's data: FER2013 (+FER+), JAFFE and the Taiwanese set, split honestly.

- FER2013: its ``Training`` rows are split by image into training (90 %) and validation (10 %);
  PublicTest (and PrivateTest where the file has it) is test, reported once per model, with
  FER's own labels and with FER+ majority labels. Training targets blend the two label sets
  (FER+ vote shares weighted ``ferplus_weight``, FER's own label the rest): they agree on only
  ~70 % of faces after mapping, and each alone teaches its annotators' habits.
- JAFFE and the Taiwanese set: posed faces of a few people, so they are split **by subject**
  into training, validation and test; each set's reported figure comes from subjects the model
  never saw. Their crops come from the live detector and crop (``engine.datasets.images``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.datasets import (
    FaceDataset,
    concat_datasets,
    read_fer2013_both,
    read_jaffe_photos,
    read_taiwanese_photos,
)
from engine.datasets.images import PhotoFace

#: Subjects held out as test / validation, drawn once with a fixed seed and written down here so
#: that every run and every report uses the same people.
JAFFE_TEST = ("KM", "NM", "UY", "YM")
JAFFE_VALIDATION = ("KR",)
TAIWANESE_TEST = ("TW03", "TW07", "TW11", "TW15", "TW19", "TW23", "TW27", "TW30")
TAIWANESE_VALIDATION = ("TW05", "TW13", "TW21")


#: FER2013 validation rows with FER's own labels (the same faces as with FER+ labels).
FER_VAL_OWN = "fer-val (FER labels)"


@dataclass
class HeldOut:
    """A test or validation set: faces with labels, and for photo sets the photos and boxes."""

    dataset: FaceDataset
    photos: list[PhotoFace] = field(default_factory=list)


@dataclass
class Corpus:
    train: FaceDataset
    #: Named validation sets; model selection and calibration look only at these.
    validation: dict[str, HeldOut]
    #: Named test sets; reported once per model.
    test: dict[str, HeldOut]

    def state_validation(self) -> FaceDataset:
        """Every validation face once, FER2013's with FER+ labels (what the LSTM head's early
        stopping and the operating-point table score)."""
        return concat_datasets(
            [held.dataset for name, held in self.validation.items() if name != FER_VAL_OWN],
            "validation",
        )


def blend(first: FaceDataset, second: FaceDataset, second_weight: float, name: str) -> FaceDataset:
    labels = (1.0 - second_weight) * first.labels + second_weight * second.labels
    return FaceDataset(name, first.faces, labels, first.label_names, first.subjects, first.splits)


def _by_subjects(
    dataset: FaceDataset,
    photos: list[PhotoFace],
    test: tuple[str, ...],
    validation: tuple[str, ...],
) -> tuple[FaceDataset, HeldOut, HeldOut]:
    is_test = np.isin(dataset.subjects, test)
    is_val = np.isin(dataset.subjects, validation)
    pick = lambda mask: [p for p, keep in zip(photos, mask, strict=True) if keep]  # noqa: E731
    return (
        dataset.subset(~is_test & ~is_val),
        HeldOut(dataset.subset(is_val, f"{dataset.name} validation subjects"), pick(is_val)),
        HeldOut(dataset.subset(is_test, f"{dataset.name} test subjects"), pick(is_test)),
    )


def load_corpus(
    datasets_root: Path,
    *,
    posed: bool = True,
    ferplus_weight: float = 0.7,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> Corpus:
    fer_own, fer_plus = read_fer2013_both(
        datasets_root / "fer2013" / "fer2013.csv.gz", datasets_root / "fer2013" / "fer2013new.csv"
    )
    is_train = fer_own.splits == "train"
    rng = np.random.default_rng(seed)
    is_val = is_train & (rng.random(len(fer_own)) < validation_fraction)
    fit = is_train & ~is_val
    train_parts = [blend(fer_own.subset(fit), fer_plus.subset(fit), ferplus_weight, "fer2013")]
    validation = {
        FER_VAL_OWN: HeldOut(fer_own.subset(is_val, "fer2013 validation, FER labels")),
        "fer-val (FER+ labels)": HeldOut(
            fer_plus.subset(is_val, "fer2013 validation, FER+ labels")
        ),
    }
    is_test = ~is_train
    test = {
        "PublicTest (FER labels)": HeldOut(
            fer_own.subset(is_test, "fer2013 PublicTest, FER labels")
        ),
        "PublicTest (FER+ labels)": HeldOut(
            fer_plus.subset(is_test, "fer2013 PublicTest, FER+ labels")
        ),
    }
    jaffe, jaffe_photos = read_jaffe_photos(datasets_root / "jaffe")
    taiwanese, taiwanese_photos = read_taiwanese_photos(datasets_root / "taiwanese")
    for dataset, photos, test_subjects, val_subjects in (
        (jaffe, jaffe_photos, JAFFE_TEST, JAFFE_VALIDATION),
        (taiwanese, taiwanese_photos, TAIWANESE_TEST, TAIWANESE_VALIDATION),
    ):
        fit_part, val_part, test_part = _by_subjects(dataset, photos, test_subjects, val_subjects)
        if posed:
            train_parts.append(fit_part)
        validation[f"{dataset.name}-val"] = val_part
        test[dataset.name] = test_part
    return Corpus(concat_datasets(train_parts, "train"), validation, test)
