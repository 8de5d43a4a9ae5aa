"""Stage 2's levers: dropout on the input embeddings and the still classifier as a teacher."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from engine.model import build_sequence_head
from engine.training.sequences import SequenceBatches, still_states
from engine.window_head import WindowHead

#: Labels named as the states themselves map one to one (``state_matrix``).
LABELS = ("interested", "bored", "confused")
MAPPING: dict[str, str] = {}


def still_classifier(dim: int, kernel: np.ndarray, bias: np.ndarray) -> keras.Model:
    inputs = keras.Input((dim,))
    dense = keras.layers.Dense(len(LABELS), activation="softmax", name="emotions")
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([kernel, bias])
    return model


def test_still_states_are_the_classifiers_softmax_summed_into_states() -> None:
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(4, 3)).astype(np.float32), np.zeros(3, np.float32)
    embeddings = rng.normal(size=(5, 2, 4)).astype(np.float16)
    states = still_states(still_classifier(4, kernel, bias), embeddings, LABELS, MAPPING)
    logits = embeddings.astype(np.float32) @ kernel
    expected = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(states, expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"from 6 features to 3 emotions\. Received: .*\(4, 3\)"):
        still_states(still_classifier(4, kernel, bias), rng.normal(size=(5, 2, 6)), LABELS, MAPPING)


def test_teacher_weight_blends_the_last_frames_teacher_states_into_the_target() -> None:
    rng = np.random.default_rng(1)
    n, variants = 40, 3
    embeddings = rng.normal(size=(n, variants, 8)).astype(np.float16)
    labels = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    teacher = np.full((n, variants, 3), 1 / 3, np.float32)
    plain = SequenceBatches(embeddings, labels, batch_size=16, seed=5)
    taught = SequenceBatches(
        embeddings, labels, batch_size=16, seed=5, teacher_states=teacher, teacher_weight=0.5
    )
    (_, y_plain), (_, y_taught) = plain[0], taught[0]
    assert set(np.unique(y_plain)) == {0.0, 1.0}
    np.testing.assert_allclose(y_taught, 0.5 * y_plain + 0.5 / 3, rtol=1e-6)


def test_input_dropout_trains_only_and_the_live_head_still_reads_the_model() -> None:
    head = build_sequence_head(16, input_dropout=0.3)
    assert head.get_layer("input_dropout").rate == 0.3
    windows = np.random.default_rng(2).normal(size=(4, 10, 16)).astype(np.float32)
    live = WindowHead.from_keras(head)
    assert live is not None
    projected = live.project(windows.reshape(-1, 16)).reshape(4, 10, -1)
    np.testing.assert_allclose(live.predict(projected), head(windows, training=False), atol=1e-5)
