"""Stage 2: the LSTM head trained on sequences of CNN embeddings made from stills.

No openly licensed classroom video with learning-state labels exists, so sequences are made
from stills: each frame of a sequence is a jittered copy of a face (shift, rotation, scale,
flip, light), and some sequences change expression part-way. The label is the state of the
last expression — what the live product must report. Each jittered face is encoded once by
the frozen stage-1 CNN, so an epoch costs only LSTM work (end-to-end is ~30× slower here).
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from engine.datasets import FaceDataset, state_matrix
from engine.model import SEQUENCE_LENGTH, build_sequence_head
from engine.preprocess import preprocess_faces
from engine.training.augment import augment_faces
from engine.training.callbacks import StateMacroF1, standard_callbacks
from engine.training.stills import state_balancing_weights


def embed_variants(
    encoder: keras.Model,
    faces: np.ndarray,
    num_variants: int,
    seed: int = 0,
    *,
    equalize: bool = False,
) -> np.ndarray:
    """float16 (N, num_variants, D): variant 0 is the face as it is, the others are jittered."""
    rng = np.random.default_rng(seed)
    dim = int(encoder.output.shape[-1])
    out = np.empty((len(faces), num_variants, dim), np.float16)
    batch = 512
    for variant in range(num_variants):
        for start in tqdm(
            range(0, len(faces), batch), desc=f"embedding variant {variant}", leave=False
        ):
            part = faces[start : start + batch]
            if variant:
                part = augment_faces(part, rng)
            out[start : start + batch, variant] = np.asarray(
                encoder(preprocess_faces(part, equalize=equalize), training=False)
            )
    return out


def still_states(
    classifier: keras.Model,
    embeddings: np.ndarray,
    label_names: tuple[str, ...],
    mapping: dict[str, str],
) -> np.ndarray:
    """float32 (N, V, 3): the still classifier's state probabilities for cached embeddings
    (its Dense softmax on each embedding, emotions summed into states)."""
    kernel, bias = (
        np.asarray(w, np.float32) for w in classifier.get_layer("emotions").get_weights()
    )
    if kernel.shape != (embeddings.shape[-1], len(label_names)):
        raise ValueError(
            f"Expected a still classifier from {embeddings.shape[-1]} features to "
            f"{len(label_names)} emotions. Received: a Dense kernel of shape {kernel.shape}"
        )
    matrix = state_matrix(label_names, mapping)
    out = np.empty((*embeddings.shape[:2], matrix.shape[1]), np.float32)
    for start in range(0, len(embeddings), 4096):
        logits = embeddings[start : start + 4096].astype(np.float32) @ kernel + bias
        logits -= logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        out[start : start + 4096] = (p / p.sum(axis=-1, keepdims=True)) @ matrix
    return out


class SequenceBatches(keras.utils.PyDataset):
    """Random sequences of embeddings, a fraction with a change of expression part-way."""

    def __init__(
        self,
        embeddings: np.ndarray,
        states: np.ndarray,
        *,
        sequence_length: int = SEQUENCE_LENGTH,
        batch_size: int = 64,
        change_fraction: float = 0.4,
        balancing_power: float = 0.5,
        seed: int = 0,
        teacher_states: np.ndarray | None = None,
        teacher_weight: float = 0.0,
    ) -> None:
        """``teacher_states`` (N, V, 3): the stage-1 classifier's states for each face variant;
        a sequence's target is then ``teacher_weight`` of those (for its last frame) and the
        rest the face's label."""
        super().__init__()
        self.embeddings = embeddings
        self.states = states
        self.teacher_states = teacher_states
        self.teacher_weight = teacher_weight if teacher_states is not None else 0.0
        self.sequence_length = sequence_length
        self.batch_size = batch_size
        self.change_fraction = change_fraction
        self.rng = np.random.default_rng(seed)
        weights = state_balancing_weights(states, balancing_power)
        self.last_probabilities = weights / weights.sum()

    def __len__(self) -> int:
        return math.ceil(len(self.embeddings) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        n, v, _ = self.embeddings.shape
        t, b, rng = self.sequence_length, self.batch_size, self.rng
        last = rng.choice(n, size=b, p=self.last_probabilities)
        first = rng.integers(0, n, size=b)
        change_at = np.where(rng.random(b) < self.change_fraction, rng.integers(1, t - 2, b), 0)
        frame = np.arange(t)[np.newaxis, :]
        image = np.where(
            frame < change_at[:, np.newaxis], first[:, np.newaxis], last[:, np.newaxis]
        )
        variant = rng.integers(0, v, size=(b, t))
        x = self.embeddings[image, variant].astype(np.float32)
        y = self.states[last]
        if self.teacher_states is not None and self.teacher_weight:
            taught = self.teacher_states[last, variant[:, -1]]
            y = (1 - self.teacher_weight) * y + self.teacher_weight * taught
        return x, y


def held_sequences(embeddings: np.ndarray, sequence_length: int = SEQUENCE_LENGTH) -> np.ndarray:
    """Each face's clean embedding repeated T times: a still face held in front of the camera."""
    return np.repeat(embeddings[:, :1, :].astype(np.float32), sequence_length, axis=1)


def train_sequences(
    encoder: keras.Model,
    train: FaceDataset,
    validation: FaceDataset,
    mapping: dict[str, str],
    run_dir: Path,
    *,
    epochs: int = 100,
    patience: int = 8,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    num_variants: int = 4,
    balancing_power: float = 0.5,
    input_dropout: float = 0.0,
    teacher: keras.Model | None = None,
    teacher_weight: float = 0.0,
    verbose: int = 1,
    equalize: bool = False,
) -> keras.Model:
    """Train (or resume) stage 2 in ``run_dir``; returns the best LSTM head. ``equalize``: the
    faces are preprocessed with CLAHE, as stage 1's encoder learnt them.

    ``teacher``: the stage-1 still classifier; with ``teacher_weight`` > 0 its state
    probabilities on each training variant blend into the targets (the head learns to follow
    the classifier it is built on, not only the labels, which it overfits within a few epochs).
    """
    cache = run_dir / "embeddings.npz"
    if cache.is_file():
        stored = np.load(cache)
        train_embeddings, val_embeddings = stored["train"], stored["validation"]
    else:
        train_embeddings = embed_variants(
            encoder, train.faces, num_variants, seed=1, equalize=equalize
        )
        val_embeddings = embed_variants(encoder, validation.faces, 1, seed=2, equalize=equalize)
        np.savez(cache, train=train_embeddings, validation=val_embeddings)
    train_states = train.labels @ state_matrix(train.label_names, mapping)
    val_states = validation.labels @ state_matrix(validation.label_names, mapping)
    teacher_states = None
    if teacher is not None and teacher_weight:
        teacher_states = still_states(teacher, train_embeddings, train.label_names, mapping)
    head = build_sequence_head(train_embeddings.shape[-1], input_dropout=input_dropout)
    head.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    x_val = held_sequences(val_embeddings)
    head.fit(
        SequenceBatches(
            train_embeddings,
            train_states,
            batch_size=batch_size,
            balancing_power=balancing_power,
            teacher_states=teacher_states,
            teacher_weight=teacher_weight,
        ),
        epochs=epochs,
        validation_data=(x_val, val_states),
        callbacks=[
            StateMacroF1(x_val, val_states.argmax(axis=1)),
            *standard_callbacks(run_dir, "sequences", patience),
        ],
        verbose=verbose,
    )
    return keras.saving.load_model(run_dir / "sequences_best.keras", compile=False)
