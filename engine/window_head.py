"""The model's LSTM head in numpy, split so each frame's share of the first LSTM is computed once.

The first LSTM multiplies every frame's 2048-d embedding by a 2048×512 kernel; in a sliding window
of T frames the same frame is multiplied T times. Caching that product per frame (512 floats, a
quarter of the embedding) leaves only the small 128×512 recurrences per window: about 6× less work
per scored window than running the Keras head, and a quarter of the memory per person. The weights
are read from the Keras head, and ``from_keras`` refuses any head it does not reproduce exactly, so
the caller can fall back to Keras. The tests compare both on random weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class _Lstm:
    kernel: np.ndarray  # (input_dim, 4 units), gates in Keras order i, f, c, o
    recurrent: np.ndarray  # (units, 4 units)
    bias: np.ndarray  # (4 units,)

    @property
    def units(self) -> int:
        return int(self.recurrent.shape[0])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # = 1 / (1 + e^-x), without overflow warnings


class WindowHead:
    """Stacked LSTMs + dense softmax over windows of cached first-layer input projections."""

    def __init__(self, lstms: list[_Lstm], dense_kernel: np.ndarray, dense_bias: np.ndarray):
        self.lstms = lstms
        self.dense_kernel = dense_kernel
        self.dense_bias = dense_bias

    @property
    def projection_dim(self) -> int:
        """Floats cached per frame: 4 × the first LSTM's units."""
        return int(self.lstms[0].kernel.shape[1])

    @classmethod
    def from_keras(cls, head: Any) -> WindowHead | None:
        """Read a Keras head of LSTMs (+ dropouts) and a softmax Dense; ``None`` for others."""
        lstms: list[_Lstm] = []
        dense = None
        for layer in head.layers:
            kind = type(layer).__name__
            if kind in ("InputLayer", "Dropout"):
                continue  # dropout is the identity at inference
            if dense is not None:
                return None  # something after the classifier
            config = layer.get_config()
            if kind == "LSTM":
                expected = {
                    "activation": "tanh",
                    "recurrent_activation": "sigmoid",
                    "use_bias": True,
                    "go_backwards": False,
                    "stateful": False,
                }
                if any(config.get(key) != value for key, value in expected.items()):
                    return None
                if not config.get("return_sequences") and len(lstms) < _count(head, "LSTM") - 1:
                    return None
                kernel, recurrent, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
                lstms.append(_Lstm(kernel, recurrent, bias))
            elif (
                kind == "Dense" and config.get("activation") == "softmax" and config.get("use_bias")
            ):
                kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
                dense = (kernel, bias)
            else:
                return None
        if not lstms or dense is None:
            return None
        return cls(lstms, *dense)

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 (N, embedding_dim) → (N, projection_dim): each frame's first-LSTM input."""
        first = self.lstms[0]
        return (embeddings.astype(np.float32, copy=False) @ first.kernel) + first.bias

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """float32 (M, T, projection_dim) cached projections → (M, num_classes) probabilities."""
        x = windows.astype(np.float32, copy=False)
        for index, lstm in enumerate(self.lstms):
            if index > 0:
                x = x @ lstm.kernel + lstm.bias
            x = _recur(x, lstm.recurrent)
        logits = x[:, -1, :] @ self.dense_kernel + self.dense_bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def _recur(inputs: np.ndarray, recurrent: np.ndarray) -> np.ndarray:
    """One LSTM over (M, T, 4U) input projections → (M, T, U) hidden states, zero initial state."""
    num_windows, length, _ = inputs.shape
    units = recurrent.shape[0]
    h = np.zeros((num_windows, units), np.float32)
    c = np.zeros((num_windows, units), np.float32)
    out = np.empty((num_windows, length, units), np.float32)
    for step in range(length):
        z = inputs[:, step, :] + h @ recurrent
        i = _sigmoid(z[:, :units])
        f = _sigmoid(z[:, units : 2 * units])
        g = np.tanh(z[:, 2 * units : 3 * units])
        o = _sigmoid(z[:, 3 * units :])
        c = f * c + i * g
        h = o * np.tanh(c)
        out[:, step, :] = h
    return out


def _count(head: Any, kind: str) -> int:
    return sum(1 for layer in head.layers if type(layer).__name__ == kind)
