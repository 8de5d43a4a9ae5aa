"""``classpulse train``: datasets → stage 1 (CNN on stills) → stage 2 (LSTM on sequences) → model.

Everything lives in one run folder, so an interrupted run resumes where it stopped: a finished
stage leaves its model file and is skipped; an unfinished one resumes from its last epoch
(Keras ``BackupAndRestore``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from engine.datasets import (
    concat_datasets,
    load_mapping,
    read_dataset,
    split_by_subject,
    split_groups,
)
from engine.model import EmotionModel, build_cnn_lstm
from engine.training.plots import plot_training_curves
from engine.training.sequences import train_sequences
from engine.training.stills import train_stills


@dataclass(frozen=True)
class TrainingOptions:
    data: tuple[str, ...]
    run_dir: Path
    output: Path
    epochs: int = 100
    patience: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    mapping: str | None = None
    verbose: int = 1


def describe_devices() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    return (
        f"GPU: {', '.join(g.name for g in gpus)}" if gpus else "CPU only (TensorFlow sees no GPU)"
    )


def train_model(options: TrainingOptions) -> EmotionModel:
    run_dir = options.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"classpulse train: {describe_devices()}; run folder {run_dir}", flush=True)
    mapping = load_mapping(options.mapping)
    # Validation (early stopping, checkpoint choice) is carved out of each dataset's training rows
    # or subjects; its test rows (FER2013's PublicTest) stay unseen for ``classpulse evaluate``.
    splits = [split_groups(split_by_subject(read_dataset(path))[0], 0.1) for path in options.data]
    train = concat_datasets([s[0] for s in splits])
    validation = concat_datasets([s[1] for s in splits])
    print(f"train: {len(train)} faces, validation: {len(validation)} faces", flush=True)
    timing_path = run_dir / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    common: dict[str, Any] = {
        "epochs": options.epochs,
        "patience": options.patience,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "verbose": options.verbose,
    }

    encoder_path = run_dir / "frame_encoder.keras"
    if encoder_path.is_file():
        encoder = keras.saving.load_model(encoder_path, compile=False)
        print("stage 1 (CNN on stills): done earlier, reusing", encoder_path, flush=True)
    else:
        started = time.monotonic()
        encoder = train_stills(train, validation, mapping, run_dir, **common)
        timing["stills_seconds"] = timing.get("stills_seconds", 0) + time.monotonic() - started
        timing_path.write_text(json.dumps(timing))

    started = time.monotonic()
    head = train_sequences(encoder, train, validation, mapping, run_dir, **common)
    timing["sequences_seconds"] = timing.get("sequences_seconds", 0) + time.monotonic() - started
    timing_path.write_text(json.dumps(timing))

    model = EmotionModel(build_cnn_lstm(encoder, head))
    model.save(
        options.output,
        num_parameters=model.num_parameters,
        data=[str(Path(p).name) for p in options.data],
        train_faces=len(train),
        validation_faces=len(validation),
        training_seconds=round(sum(timing.values()), 1),
        device=describe_devices(),
        mapping=mapping,
    )
    plot_training_curves(
        {stage: run_dir / f"history_{stage}.csv" for stage in ("stills", "sequences")},
        run_dir / "training_curves.png",
    )
    print(f"saved {options.output} ({model.num_parameters:,} parameters)", flush=True)
    return model
