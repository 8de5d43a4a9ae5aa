"""Turn a still CNN trained by ``research/gpu_search.py`` (PyTorch, on a lent GPU) into Keras.

``python -m engine.training.torch_import WEIGHTS.npz NAME RUN_DIR`` writes ``stills_best.keras``
and ``frame_encoder.keras`` into ``RUN_DIR``; ``python -m engine.training.recipe --run-dir
RUN_DIR`` then trains stage 2 (the LSTM head) on the CPU and calibrates, as for a CPU run.
Only numpy arrays are read: PyTorch is not needed here.

Layouts: a PyTorch convolution kernel is (out, in, kh, kw), Keras's (kh, kw, in, out); both
compute a cross-correlation, so a transpose is all it takes. Batch norm maps weight/bias/
running mean/running variance to gamma/beta/moving mean/moving variance (both use epsilon
1e-3 here). The search flattens in Keras's (H, W, C) order, so the dense kernel is a transpose.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import keras
import numpy as np
from keras import layers

from engine.model import build_frame_encoder

#: PyTorch ``nn.Sequential`` indices of each block's convolution and batch norm.
_BLOCKS = ((1, 0, 1), (2, 4, 5), (3, 8, 9))


def read_run(weights: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(weights) as data:
        prefix = f"{name}/"
        arrays = {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}
    if not arrays:
        raise ValueError(f"Expected arrays named {name}/... in {weights}. Received: none")
    return arrays


def still_classifier(arrays: dict[str, np.ndarray]) -> keras.Model:
    """The recipe's stage-1 model (encoder → Dropout → Dense softmax) holding the given weights."""
    encoder = build_frame_encoder(batch_norm=True)
    for index, conv, norm in _BLOCKS:
        kernel = arrays[f"encoder.{conv}.weight"].transpose(2, 3, 1, 0)
        encoder.get_layer(f"conv{index}").set_weights([kernel])
        encoder.get_layer(f"norm{index}").set_weights(
            [
                arrays[f"encoder.{norm}.weight"],
                arrays[f"encoder.{norm}.bias"],
                arrays[f"encoder.{norm}.running_mean"],
                arrays[f"encoder.{norm}.running_var"],
            ]
        )
    dense_kernel = arrays["dense.weight"].T
    inputs = keras.Input((48, 48, 1), name="face")
    x = encoder(inputs)
    x = layers.Dropout(0.5, name="dropout")(x)
    dense = layers.Dense(dense_kernel.shape[1], activation="softmax", name="emotions")
    outputs = dense(x)
    dense.set_weights([dense_kernel, arrays["dense.bias"]])
    return keras.Model(inputs, outputs, name="still_classifier")


def import_run(weights: Path, name: str, run_dir: Path) -> keras.Model:
    model = still_classifier(read_run(weights, name))
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "stills_best.keras")
    encoder = model.get_layer("frame_encoder")
    encoder.save(run_dir / "frame_encoder.keras")
    (run_dir / "imported_from.json").write_text(
        json.dumps({"weights": str(weights), "run": name}, indent=2) + "\n"
    )
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("weights", type=Path)
    parser.add_argument("name")
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    model = import_run(args.weights, args.name, args.run_dir)
    print(f"wrote {args.run_dir}/frame_encoder.keras ({model.count_params():,} parameters)")


if __name__ == "__main__":
    main()
