"""Model speed on this machine: ``predict_faces`` and the live inference runtime with the float and
the 8-bit encoder (``engine.quantized``; the bot runs int8 on a CPU), and training samples per second.

Run: ``.venv/bin/python -m benchmarks.model`` (prints figures; no assertions — goals live in notes).
Goal (issue 2): ≤ 2 ms per face at batch 32 on a 2-core CPU. ``--threads 1`` (the default) is what
the live inference process gets on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator

import numpy as np

from engine.inference import InferenceRuntime, InferenceSettings, configure_tensorflow
from engine.model import EmotionModel, build_cnn_lstm
from engine.quantized import ENCODER_KINDS
from engine.training.pipeline import describe_devices
from engine.training.sequences import SequenceBatches
from engine.training.stills import build_still_classifier


def time_calls(function: object, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()  # type: ignore[operator]
        timings.append(time.perf_counter() - started)
    return timings


def time_encoder(model: EmotionModel, repeats: int) -> None:
    """``predict_faces`` and the live inference runtime, reading faces with ``model``'s encoder."""
    kind = model.encoder_kind
    rng = np.random.default_rng(0)
    for batch in (1, 32, 128):
        faces = rng.integers(0, 256, (batch, 48, 48), dtype=np.uint8)
        model.predict_faces(faces)  # warm-up: traces the graph / plans the interpreters
        median = statistics.median(time_calls(lambda f=faces: model.predict_faces(f), repeats))
        print(
            f"[{kind}] predict_faces batch {batch:3d}: {median * 1e3:7.2f} ms per call, "
            f"{median * 1e3 / batch:6.3f} ms per face, {batch / median:8.0f} faces/s"
        )
    # What the live inference process runs: InferenceRuntime (the encoder on every view the
    # shipped encoder averages, then the numpy WindowHead over each person's cached window).
    runtime = InferenceRuntime(model, InferenceSettings())
    head = "numpy WindowHead" if runtime.window_head else "Keras"
    for batch in (1, 8, 32, 64):
        crops = rng.integers(0, 256, (batch, 48, 48), dtype=np.uint8)
        ids = [f"person{i}" for i in range(batch)]
        runtime.run(ids, [0.0] * batch, crops)
        ticks = iter(range(1, 10**9))  # each call one analysis step (0.2 s) later per person

        def step(c: np.ndarray = crops, p: list[str] = ids, k: Iterator[int] = ticks) -> None:
            runtime.run(p, [next(k) * 0.2] * len(p), c)

        median = statistics.median(time_calls(step, repeats))
        print(
            f"[{kind}] live InferenceRuntime.run ({head}) batch {batch:3d}: "
            f"{median * 1e3:7.2f} ms per call, {median * 1e3 / batch:6.3f} ms per face"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per model (the live process: half the cores)",
    )
    parser.add_argument("--encoder", choices=("both", *ENCODER_KINDS), default="both")
    args = parser.parse_args()
    print(
        f"device: {describe_devices()}; cores: {os.cpu_count()}; threads per model: {args.threads}"
    )
    configure_tensorflow(args.threads)
    kinds = ENCODER_KINDS if args.encoder == "both" else (args.encoder,)
    for kind in kinds:
        time_encoder(EmotionModel.load(encoder_kind=kind, num_threads=args.threads), args.repeats)

    rng = np.random.default_rng(0)
    stills = build_still_classifier(8)
    stills.compile(optimizer="adam", loss="categorical_crossentropy")
    x = rng.normal(size=(64 * 40, 48, 48, 1)).astype(np.float32)
    y = np.eye(8, dtype=np.float32)[rng.integers(0, 8, len(x))]
    stills.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)
    started = time.perf_counter()
    stills.fit(x, y, batch_size=64, epochs=1, verbose=0)
    print(
        f"training stage 1 (CNN on stills, augmented): {len(x) / (time.perf_counter() - started):6.0f} samples/s"
    )

    head_model = EmotionModel(build_cnn_lstm()).head
    head_model.compile(optimizer="adam", loss="categorical_crossentropy")
    embeddings = rng.normal(size=(2000, 4, 2048)).astype(np.float16)
    states = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 2000)]
    batches = SequenceBatches(embeddings, states)
    head_model.fit(batches, epochs=1, steps_per_epoch=3, verbose=0)
    started = time.perf_counter()
    head_model.fit(batches, epochs=1, steps_per_epoch=30, verbose=0)
    rate = 30 * 64 / (time.perf_counter() - started)
    print(f"training stage 2 (LSTM on T=10 embedding sequences): {rate:6.0f} sequences/s")


if __name__ == "__main__":
    main()
