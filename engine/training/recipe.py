"""The shipped recipe: corpus → stage 1 (CNN on augmented stills) → stage 2 (LSTM) → calibration.

``python -m engine.training.recipe --run-dir runs/NAME`` (or ``classpulse train``) trains it;
a run folder resumes where it stopped. Model selection and the prior correction look only at the
validation sets (FER2013 Training rows held out by image, JAFFE and Taiwanese subjects held out);
the test sets are scored once, after training, by ``engine.training.heldout``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from engine.datasets import FaceDataset, concat_datasets, load_mapping, state_matrix, true_states
from engine.model import EmotionModel, build_cnn_lstm, build_frame_encoder, multi_view
from engine.preprocess import preprocess_faces
from engine.settings_paths import datasets_dir
from engine.training.augment import augment_faces
from engine.training.callbacks import standard_callbacks
from engine.training.corpus import FER_VAL_OWN, Corpus, load_corpus
from engine.training.metrics import classification_report
from engine.training.sequences import train_sequences
from engine.training.stills import state_balancing_weights
from engine.types import CLASSES


@dataclass(frozen=True)
class Recipe:
    """Every lever of a run; a run folder remembers the recipe it was started with."""

    posed: bool = True  # JAFFE + Taiwanese training subjects in the training set
    posed_repeat: int = 3  # each posed face this many times per epoch (they are few)
    ferplus_weight: float = 0.7  # FER+ votes vs FER's own label in the targets
    batch_norm: bool = True
    augment: bool = True
    balancing_power: float = 1.0  # sample weight ∝ frequency(state)^-power
    #: Per-state prior correction chosen on the per-frame validation score. Off in the shipped
    #: recipe: on validation students it made calm faces draw false alerts (MODEL_CARD.md).
    calibrate: bool = False
    views: int = 1  # test-time views averaged inside the encoder (1, 2: mirror, 4: + tighter crop)
    #: Run folders whose still classifiers (``stills_best.keras``) teach stage 1, comma-separated:
    #: their mean emotion probabilities on each training face blend into its target (an
    #: ensemble distilled into one paper-size model). Empty: no teacher.
    distill_from: str = ""
    distill_weight: float = 0.5  # teachers' share of the target when ``distill_from`` is set
    #: Stage 1's learning rate: ``plateau`` halves it when the selection score stalls for 2
    #: epochs and stops after ``patience``; ``cosine`` decays it to 0 over ``epochs`` and runs
    #: them all (the best epoch on validation is kept either way).
    schedule: str = "plateau"
    #: Stage 2: dropout on each frame's embedding before the first LSTM (training only).
    head_input_dropout: float = 0.0
    #: Stage 2: share of the stage-1 classifier's states in the head's targets (the shipped model:
    #: 0.5; without it the head overfits the frozen CNN's embeddings of its own training faces).
    head_teacher_weight: float = 0.5
    #: CLAHE in the one preprocessing function (``engine.preprocess.equalize_faces``), after the
    #: augmentation as a live crop gets it; the model records it and applies it when it reads.
    equalize: bool = False
    epochs: int = 40
    patience: int = 6
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


class StillBatches(keras.utils.PyDataset):
    """Shuffled batches of augmented, preprocessed faces with their targets and weights."""

    def __init__(
        self, train: FaceDataset, targets: np.ndarray, recipe: Recipe, weights: np.ndarray
    ) -> None:
        super().__init__()
        self.train, self.targets, self.recipe, self.weights = train, targets, recipe, weights
        posed = ~np.char.startswith(train.subjects.astype(str), "fer2013:")
        repeat = np.where(posed, recipe.posed_repeat, 1)
        self.order = np.repeat(np.arange(len(train)), repeat)
        self.rng = np.random.default_rng(recipe.seed)
        self.rng.shuffle(self.order)

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.recipe.batch_size)

    def on_epoch_end(self) -> None:
        self.rng.shuffle(self.order)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = self.recipe.batch_size
        rows = self.order[index * size : (index + 1) * size]
        faces = self.train.faces[rows]
        if self.recipe.augment:
            faces = augment_faces(faces, self.rng)
        x = preprocess_faces(faces, equalize=self.recipe.equalize)
        return x, self.targets[rows], self.weights[rows]


def teacher_targets(train: FaceDataset, recipe: Recipe) -> np.ndarray:
    """The stage-1 targets: the labels, blended with the teachers' mean probabilities."""
    if not recipe.distill_from:
        return train.labels
    inputs: dict[bool, np.ndarray] = {}  # by the teacher's own ``equalize``
    taught = []
    for folder in recipe.distill_from.split(","):
        teacher = keras.saving.load_model(Path(folder) / "stills_best.keras", compile=False)
        if teacher.output_shape[-1] != train.labels.shape[1]:
            raise ValueError(
                f"Expected a teacher over the {train.labels.shape[1]} training labels. "
                f"Received: {folder} with {teacher.output_shape[-1]} outputs"
            )
        equalize = _trained_with_equalize(Path(folder))
        if equalize not in inputs:
            inputs[equalize] = preprocess_faces(train.faces, equalize=equalize)
        taught.append(teacher.predict(inputs[equalize], batch_size=512, verbose=0))
    weight = recipe.distill_weight
    return ((1 - weight) * train.labels + weight * np.mean(taught, axis=0)).astype(np.float32)


def _trained_with_equalize(run_dir: Path) -> bool:
    """Whether a teacher's run preprocessed its faces with CLAHE (its ``recipe.json``; a run
    without one predates the lever): a teacher reads faces as it learnt them."""
    recipe_file = run_dir / "recipe.json"
    if not recipe_file.is_file():
        return False
    equalize = json.loads(recipe_file.read_text()).get("equalize", False)
    if not isinstance(equalize, bool):
        raise ValueError(
            f"Expected `equalize` true or false in {recipe_file}. Received: {equalize!r}"
        )
    return equalize


def validation_groups(corpus: Corpus) -> dict[str, FaceDataset]:
    """What selection and calibration score: FER validation with each label set, posed subjects."""
    posed = [corpus.validation[k].dataset for k in corpus.validation if not k.startswith("fer")]
    return {
        "fer-val FER": corpus.validation[FER_VAL_OWN].dataset,
        "fer-val FER+": corpus.validation["fer-val (FER+ labels)"].dataset,
        "posed-val": concat_datasets(posed, "posed validation"),
    }


def selection_score(
    probabilities: dict[str, np.ndarray], truths: dict[str, np.ndarray]
) -> tuple[float, dict[str, float]]:
    """Mean macro-F1 over the validation groups (each group counts once, whatever its size)."""
    scores = {
        name: classification_report(truths[name], p.argmax(axis=1), CLASSES).macro_f1
        for name, p in probabilities.items()
    }
    return float(np.mean(list(scores.values()))), scores


class SelectionScore(keras.callbacks.Callback):
    """Adds ``val_macro_f1`` (the selection score) and each group's macro-F1 to the epoch logs."""

    def __init__(
        self, groups: dict[str, FaceDataset], mapping: dict[str, str], *, equalize: bool = False
    ) -> None:
        super().__init__()
        self.inputs = {k: preprocess_faces(d.faces, equalize=equalize) for k, d in groups.items()}
        self.truths = {k: true_states(d, mapping) for k, d in groups.items()}
        self.matrix = state_matrix(next(iter(groups.values())).label_names, mapping)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        probabilities = {
            k: self.model.predict(x, batch_size=512, verbose=0) @ self.matrix
            for k, x in self.inputs.items()
        }
        score, parts = selection_score(probabilities, self.truths)
        if logs is not None:
            logs["val_macro_f1"] = score
            logs.update({f"val_f1 {k}": v for k, v in parts.items()})
        print(
            f"  epoch {epoch + 1}: selection {score:.3f} "
            + " ".join(f"{k}={v:.3f}" for k, v in parts.items()),
            flush=True,
        )


def schedule_callbacks(recipe: Recipe) -> list[keras.callbacks.Callback]:
    """Stage 1's learning-rate schedule (see ``Recipe.schedule``)."""
    if recipe.schedule == "plateau":
        return [
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_macro_f1", mode="max", factor=0.5, patience=2, min_lr=1e-5
            )
        ]
    if recipe.schedule == "cosine":
        rate, epochs = recipe.learning_rate, recipe.epochs
        return [
            keras.callbacks.LearningRateScheduler(
                lambda epoch: 0.5 * rate * (1 + math.cos(math.pi * epoch / epochs))
            )
        ]
    raise ValueError(f"Expected a schedule in ('plateau', 'cosine'). Received: {recipe.schedule!r}")


def train_encoder(
    corpus: Corpus, recipe: Recipe, mapping: dict[str, str], run_dir: Path
) -> keras.Model:
    train = corpus.train
    inputs = keras.Input((48, 48, 1), name="face")
    x = build_frame_encoder(recipe.batch_norm)(inputs)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(len(train.label_names), activation="softmax", name="emotions")(x)
    model = keras.Model(inputs, outputs, name="still_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(recipe.learning_rate), loss="categorical_crossentropy"
    )
    weights = state_balancing_weights(
        train.labels @ state_matrix(train.label_names, mapping), recipe.balancing_power
    )
    model.fit(
        StillBatches(train, teacher_targets(train, recipe), recipe, weights),
        epochs=recipe.epochs,
        callbacks=[
            SelectionScore(validation_groups(corpus), mapping, equalize=recipe.equalize),
            *schedule_callbacks(recipe),
            *standard_callbacks(
                run_dir,
                "stills",
                recipe.epochs if recipe.schedule == "cosine" else recipe.patience,
            ),
        ],
        verbose=2,
    )
    best = keras.saving.load_model(run_dir / "stills_best.keras", compile=False)
    encoder = best.get_layer("frame_encoder")
    encoder.save(run_dir / "frame_encoder.keras")
    return encoder


def still_teacher(run_dir: Path, recipe: Recipe) -> keras.Model | None:
    """Stage 1's still classifier when stage 2 learns from it (``head_teacher_weight``)."""
    if not recipe.head_teacher_weight:
        return None
    path = run_dir / "stills_best.keras"
    if not path.is_file():
        raise ValueError(
            f"Expected the stage-1 classifier {path} for head_teacher_weight="
            f"{recipe.head_teacher_weight}. Received: no such file"
        )
    return keras.saving.load_model(path, compile=False)


def choose_prior_correction(
    model: EmotionModel, groups: dict[str, FaceDataset], mapping: dict[str, str]
) -> tuple[np.ndarray, float, float]:
    """Log-offsets added to the output logits (a prior correction), chosen on validation.

    Returns the offsets and the selection score before and after.
    """
    truths = {k: true_states(d, mapping) for k, d in groups.items()}
    logs = {k: np.log(np.maximum(model.predict_faces(d.faces), 1e-7)) for k, d in groups.items()}
    before, _ = selection_score(logs, truths)
    best, best_score = np.zeros(3, np.float32), before
    grid = np.round(np.arange(-1.5, 2.51, 0.25), 2)
    for bored in grid:
        for confused in grid:
            offset = np.array([0.0, bored, confused], np.float32)
            score, _ = selection_score({k: v + offset for k, v in logs.items()}, truths)
            if score > best_score + 1e-9:
                best, best_score = offset, score
    return best, before, best_score


def train_recipe(
    recipe: Recipe, run_dir: Path, datasets: Path, output: Path | None = None
) -> EmotionModel:
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe_file = run_dir / "recipe.json"
    # A folder started before a lever existed ran with that lever's default.
    begun = (
        {**asdict(Recipe()), **json.loads(recipe_file.read_text())}
        if recipe_file.is_file()
        else None
    )
    if begun is not None and begun != asdict(recipe):
        raise ValueError(
            f"Expected the recipe this run folder was started with ({recipe_file}). "
            f"Received: {asdict(recipe)}"
        )
    recipe_file.write_text(json.dumps(asdict(recipe), indent=2))
    keras.utils.set_random_seed(recipe.seed)
    mapping = load_mapping()
    corpus = load_corpus(datasets, posed=recipe.posed, ferplus_weight=recipe.ferplus_weight)
    print(
        f"train {len(corpus.train)} faces; validation "
        + ", ".join(f"{k} {len(v.dataset)}" for k, v in corpus.validation.items()),
        flush=True,
    )
    timing_path = run_dir / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    encoder_path = run_dir / "frame_encoder.keras"
    if encoder_path.is_file():
        encoder = keras.saving.load_model(encoder_path, compile=False)
    else:
        started = time.monotonic()
        encoder = train_encoder(corpus, recipe, mapping, run_dir)
        timing["stills_seconds"] = timing.get("stills_seconds", 0) + time.monotonic() - started
        timing_path.write_text(json.dumps(timing))
    if recipe.views > 1:
        encoder = multi_view(encoder, recipe.views)
    groups = validation_groups(corpus)
    head_path = run_dir / "sequence_head.keras"
    if head_path.is_file():
        head = keras.saving.load_model(head_path, compile=False)
    else:
        started = time.monotonic()
        head = train_sequences(
            encoder,
            corpus.train,
            corpus.state_validation(),
            mapping,
            run_dir,
            epochs=recipe.epochs,
            patience=recipe.patience,
            batch_size=recipe.batch_size,
            learning_rate=recipe.learning_rate,
            balancing_power=recipe.balancing_power,
            input_dropout=recipe.head_input_dropout,
            teacher=still_teacher(run_dir, recipe),
            teacher_weight=recipe.head_teacher_weight,
            verbose=2,
            equalize=recipe.equalize,
        )
        head.save(head_path)
        timing["sequences_seconds"] = (
            timing.get("sequences_seconds", 0) + time.monotonic() - started
        )
        timing_path.write_text(json.dumps(timing))
    model = EmotionModel(build_cnn_lstm(encoder, head), equalize=recipe.equalize)
    offset, before, after = np.zeros(3, np.float32), math.nan, math.nan
    if recipe.calibrate:
        offset, before, after = choose_prior_correction(model, groups, mapping)
        dense = model.head.get_layer("states")
        dense.bias.assign(np.asarray(dense.bias) + offset)
        print(
            f"prior correction {offset.tolist()}: selection {before:.3f} → {after:.3f}", flush=True
        )
    output = output or run_dir / "model.keras"
    model.save(
        output,
        num_parameters=model.num_parameters,
        recipe=asdict(recipe),
        prior_correction=offset.tolist(),
        selection_before_correction=round(before, 4),
        selection_after_correction=round(after, 4),
        train_faces=len(corpus.train),
        training_seconds=round(sum(timing.values()), 1),
        mapping=mapping,
    )
    print(f"saved {output} ({model.num_parameters:,} parameters)", flush=True)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--datasets", type=Path, default=None)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="recipe lever, e.g. posed=false",
    )
    args = parser.parse_args(argv)
    fields: dict[str, Any] = {}
    defaults = asdict(Recipe())
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in defaults:
            raise SystemExit(f"Expected a recipe field in {sorted(defaults)}. Received: {key!r}")
        kind = type(defaults[key])
        fields[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    train_recipe(Recipe(**fields), args.run_dir, args.datasets or datasets_dir())


if __name__ == "__main__":
    main()
