"""A still CNN in PyTorch's layout becomes the same network in Keras (engine.training.torch_import).

The reference is a plain numpy forward pass written in PyTorch's conventions (NCHW, kernels
(out, in, kh, kw), cross-correlation, flatten in (H, W, C) order as the search does), so a wrong
transpose or a swapped batch-norm statistic changes the outputs and fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from engine.preprocess import preprocess_faces
from engine.training.torch_import import import_run, read_run

EPSILON = 1e-3


def torch_layout_weights(rng: np.random.Generator, num_labels: int) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    channels = 1
    for conv, norm, filters in ((0, 1, 32), (4, 5, 64), (8, 9, 128)):
        fan_in = channels * 9
        arrays[f"encoder.{conv}.weight"] = rng.normal(
            0, (2 / fan_in) ** 0.5, (filters, channels, 3, 3)
        )
        arrays[f"encoder.{norm}.weight"] = rng.uniform(0.5, 1.5, filters)
        arrays[f"encoder.{norm}.bias"] = rng.normal(0, 0.1, filters)
        arrays[f"encoder.{norm}.running_mean"] = rng.normal(0, 0.2, filters)
        arrays[f"encoder.{norm}.running_var"] = rng.uniform(0.5, 2.0, filters)
        channels = filters
    arrays["dense.weight"] = rng.normal(0, 0.05, (num_labels, 2048))
    arrays["dense.bias"] = rng.normal(0, 0.1, num_labels)
    return {k: v.astype(np.float32) for k, v in arrays.items()}


def reference_forward(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """(N, 1, 48, 48) → (N, L) softmax, PyTorch conventions, numpy only."""
    for conv, norm in ((0, 1), (4, 5), (8, 9)):
        kernel = arrays[f"encoder.{conv}.weight"]  # (out, in, 3, 3)
        windows = sliding_window_view(x, (3, 3), axis=(2, 3))  # (N, in, H-2, W-2, 3, 3)
        x = np.einsum("nchwij,ocij->nohw", windows, kernel)
        gamma, beta = arrays[f"encoder.{norm}.weight"], arrays[f"encoder.{norm}.bias"]
        mean, var = arrays[f"encoder.{norm}.running_mean"], arrays[f"encoder.{norm}.running_var"]
        shape = (1, -1, 1, 1)
        x = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + EPSILON)
        x = np.maximum(x * gamma.reshape(shape) + beta.reshape(shape), 0)
        n, c, h, w = x.shape
        x = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    flat = x.transpose(0, 2, 3, 1).reshape(len(x), -1)
    logits = flat @ arrays["dense.weight"].T + arrays["dense.bias"]
    logits -= logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_imported_network_computes_what_the_pytorch_layout_computes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    arrays = torch_layout_weights(rng, num_labels=8)
    bundle = tmp_path / "weights.npz"
    # Any values: mypy would otherwise match the names against savez's ``allow_pickle: bool``.
    named: dict[str, Any] = {
        **{f"run-a/{k}": v for k, v in arrays.items()},
        "run-b/dense.bias": np.zeros(8),
    }
    np.savez(bundle, **named)
    faces = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    inputs = preprocess_faces(faces)
    model = import_run(bundle, "run-a", tmp_path / "run")
    got = model.predict(inputs, verbose=0)
    expected = reference_forward(arrays, inputs.transpose(0, 3, 1, 2).astype(np.float64))
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert (tmp_path / "run" / "frame_encoder.keras").is_file()
    assert (tmp_path / "run" / "stills_best.keras").is_file()


def test_a_run_name_that_is_not_in_the_file_is_a_clear_error(tmp_path: Path) -> None:
    bundle = tmp_path / "weights.npz"
    named: dict[str, Any] = {"run-a/dense.bias": np.zeros(8)}
    np.savez(bundle, **named)
    with pytest.raises(ValueError, match=r"Expected arrays named run-z/\.\.\. in .*Received: none"):
        read_run(bundle, "run-z")
