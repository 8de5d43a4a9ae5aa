"""Stage 1: the per-frame CNN trained on still faces, with a temporary emotion head.

The CNN learns from the datasets' own emotion labels (FER+ vote shares: 8 emotions), not from
the three states: mapped to states FER+ is 75 % ``interested``, and a CNN trained on that
collapses to the majority class for epochs. Macro-F1 over the three states, computed after
every epoch on the validation split, picks the best checkpoint and stops training.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from engine.datasets import FaceDataset, state_matrix
from engine.model import build_frame_encoder
from engine.preprocess import preprocess_faces
from engine.training.callbacks import StateMacroF1, standard_callbacks


def build_still_classifier(num_labels: int) -> keras.Model:
    """Augmentation → frame encoder → Dropout(0.5) → Dense(num_labels): only for stage 1."""
    inputs = keras.Input((48, 48, 1), name="face")
    x = layers.RandomFlip("horizontal", name="flip")(inputs)
    x = layers.RandomTranslation(0.08, 0.08, fill_mode="nearest", name="shift")(x)
    x = layers.RandomRotation(0.04, fill_mode="nearest", name="rotate")(x)
    x = layers.RandomZoom(0.1, fill_mode="nearest", name="zoom")(x)
    x = build_frame_encoder()(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(num_labels, activation="softmax", name="emotions")(x)
    return keras.Model(inputs, outputs, name="still_classifier")


def state_balancing_weights(states: np.ndarray, power: float = 0.5) -> np.ndarray:
    """Per-sample weights ∝ frequency(state)^-power, mean 1: a mild push towards the rare states."""
    hard = states.argmax(axis=1)
    frequency = np.bincount(hard, minlength=states.shape[1]) / len(hard)
    weights = np.power(np.maximum(frequency[hard], 1e-6), -power)
    return (weights / weights.mean()).astype(np.float32)


def train_stills(
    train: FaceDataset,
    validation: FaceDataset,
    mapping: dict[str, str],
    run_dir: Path,
    *,
    epochs: int = 100,
    patience: int = 8,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    verbose: int = 1,
) -> keras.Model:
    """Train (or resume) stage 1 in ``run_dir``; returns the best frame encoder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    matrix = state_matrix(train.label_names, mapping)
    model = build_still_classifier(len(train.label_names))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    x_train = preprocess_faces(train.faces)
    x_val = preprocess_faces(validation.faces)
    val_states = validation.labels @ state_matrix(validation.label_names, mapping)
    weights = state_balancing_weights(train.labels @ matrix)
    macro_f1 = StateMacroF1(x_val, val_states.argmax(axis=1), matrix)
    model.fit(
        x_train,
        train.labels,
        sample_weight=weights,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_val, validation.labels),
        callbacks=[macro_f1, *standard_callbacks(run_dir, "stills", patience)],
        verbose=verbose,
        shuffle=True,
    )
    best = keras.saving.load_model(run_dir / "stills_best.keras", compile=False)
    encoder = best.get_layer("frame_encoder")
    encoder.save(run_dir / "frame_encoder.keras")
    return encoder
