"""Figures for the model card: training curves, confusion matrix, per-class precision/recall/F1."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from engine.training.metrics import ClassificationReport


def read_history(path: Path) -> dict[str, list[float]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {key: [float(r[key]) for r in rows if r.get(key) not in (None, "")] for key in rows[0]}


def plot_training_curves(history_files: dict[str, Path], output: Path) -> Path:
    """One row per stage: loss, accuracy and validation macro-F1 per epoch (the paper's Fig. 2b)."""
    stages = {name: read_history(path) for name, path in history_files.items() if path.is_file()}
    stages = {name: h for name, h in stages.items() if h}
    fig, axes = plt.subplots(
        len(stages) or 1, 3, figsize=(13, 3.6 * max(1, len(stages))), squeeze=False
    )
    for row, (name, history) in enumerate(stages.items()):
        epochs = np.arange(1, len(history["loss"]) + 1)
        for column, (metric, title) in enumerate(
            [("loss", "loss"), ("accuracy", "accuracy"), ("macro_f1", "macro-F1 (3 states)")]
        ):
            axis = axes[row, column]
            if metric in history:
                axis.plot(epochs, history[metric], label="train")
            if f"val_{metric}" in history:
                axis.plot(epochs, history[f"val_{metric}"], label="validation")
            axis.set_title(f"{name}: {title}")
            axis.set_xlabel("epoch")
            axis.grid(alpha=0.3)
            axis.legend()
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def plot_confusion(report: ClassificationReport, output: Path, title: str) -> Path:
    matrix = report.confusion.astype(float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, axis = plt.subplots(figsize=(4.8, 4.2))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(report.classes))
    axis.set_xticks(ticks, report.classes, rotation=30)
    axis.set_yticks(ticks, report.classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    for i in ticks:
        for j in ticks:
            colour = "white" if shares[i, j] > 0.5 else "black"
            axis.text(
                float(j),
                float(i),
                f"{int(matrix[i, j])}\n{shares[i, j]:.0%}",
                ha="center",
                va="center",
                color=colour,
                fontsize=8,
            )
    axis.set_title(title, fontsize=10)
    fig.colorbar(image, ax=axis, fraction=0.046)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def plot_per_class(report: ClassificationReport, output: Path, title: str) -> Path:
    """Grouped bars of precision, recall and F1 per class (the paper's Fig. 2a)."""
    ticks = np.arange(len(report.classes))
    fig, axis = plt.subplots(figsize=(6, 3.8))
    for offset, (name, values) in zip(
        (-0.27, 0.0, 0.27),
        [("precision", report.precision), ("recall", report.recall), ("F1", report.f1)],
        strict=True,
    ):
        bars = axis.bar(ticks + offset, values, width=0.26, label=name)
        axis.bar_label(bars, fmt="%.2f", fontsize=7)
    axis.set_xticks(ticks, report.classes)
    axis.set_ylim(0, 1.05)
    axis.set_title(title, fontsize=10)
    axis.legend(loc="lower right", fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
