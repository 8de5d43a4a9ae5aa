"""Callbacks shared by both stages: state macro-F1 each epoch, checkpoints, resume, history CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from engine.training.metrics import classification_report
from engine.types import CLASSES


class StateMacroF1(keras.callbacks.Callback):
    """Adds ``val_macro_f1`` (and per-state F1) to the epoch logs.

    Predictions over the model's own labels are summed into the three states with ``matrix``
    (identity when the model already predicts states). It must come before the callbacks that
    read the logs (CSV, checkpoint, early stopping).
    """

    def __init__(self, x: Any, true_states: np.ndarray, matrix: np.ndarray | None = None) -> None:
        super().__init__()
        self.x = x
        self.true_states = true_states
        self.matrix = matrix

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        probabilities = self.model.predict(self.x, batch_size=256, verbose=0)
        if self.matrix is not None:
            probabilities = probabilities @ self.matrix
        report = classification_report(self.true_states, probabilities.argmax(axis=1), CLASSES)
        if logs is not None:
            logs["val_macro_f1"] = report.macro_f1
            for name, value in zip(CLASSES, report.f1, strict=True):
                logs[f"val_f1_{name}"] = float(value)
        print(
            f"  epoch {epoch + 1}: val macro-F1 {report.macro_f1:.3f} "
            + " ".join(f"{n}={v:.2f}" for n, v in zip(CLASSES, report.f1, strict=True)),
            flush=True,
        )


def standard_callbacks(run_dir: Path, stage: str, patience: int) -> list[keras.callbacks.Callback]:
    """Resume (BackupAndRestore), history CSV, best checkpoint and early stopping on macro-F1."""
    return [
        keras.callbacks.BackupAndRestore(str(run_dir / f"{stage}_backup")),
        keras.callbacks.CSVLogger(str(run_dir / f"history_{stage}.csv"), append=True),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / f"{stage}_best.keras"),
            monitor="val_macro_f1",
            mode="max",
            save_best_only=True,
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_macro_f1", mode="max", patience=patience, restore_best_weights=True
        ),
    ]
