"""``classpulse evaluate``: the model on any dataset the readers read → metrics, plots, markdown."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.datasets import FaceDataset, to_states
from engine.model import EmotionModel
from engine.training.metrics import ClassificationReport, classification_report
from engine.training.plots import plot_confusion, plot_per_class, plot_training_curves
from engine.types import CLASSES


@dataclass(frozen=True)
class Evaluation:
    """The model's report on one dataset and the majority-class baseline on the same faces."""

    dataset: str
    num_faces: int
    report: ClassificationReport
    baseline: ClassificationReport
    majority_class: str


def evaluate(model: EmotionModel, dataset: FaceDataset, mapping: dict[str, str]) -> Evaluation:
    """Each face is read as a still held for T frames (``predict_faces``); labels mapped to states."""
    states, keep = to_states(dataset, mapping)
    if not keep.any():
        raise ValueError(
            f"Expected labels that map to {CLASSES} in {dataset.name}. "
            f"Received: labels {dataset.label_names}"
        )
    true = states[keep].argmax(axis=1)
    predicted = model.predict_faces(dataset.faces[keep]).argmax(axis=1)
    majority = int(np.bincount(true, minlength=len(CLASSES)).argmax())
    return Evaluation(
        dataset=dataset.name,
        num_faces=int(keep.sum()),
        report=classification_report(true, predicted, CLASSES),
        baseline=classification_report(true, np.full_like(true, majority), CLASSES),
        majority_class=CLASSES[majority],
    )


def _slug(text: str) -> str:
    """A file-name part for a dataset's figures. "fer2013" is shortened to "fer" so that plots
    are never mistaken for copies of the dataset (whose files must not enter the repository)."""
    return re.sub(
        r"[^a-z0-9]+", "-", text.lower().replace("fer2013", "fer").replace("+", "plus")
    ).strip("-")


def markdown_table(evaluation: Evaluation) -> str:
    r, b = evaluation.report, evaluation.baseline
    lines = [
        f"**{evaluation.dataset}** — {evaluation.num_faces} faces",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for i, name in enumerate(r.classes):
        lines.append(
            f"| {name} | {r.precision[i]:.3f} | {r.recall[i]:.3f} | {r.f1[i]:.3f} | {int(r.support[i])} |"
        )
    lines += [
        "",
        f"accuracy **{r.accuracy:.3f}**, macro-F1 **{r.macro_f1:.3f}**; majority-class baseline "
        f"(always `{evaluation.majority_class}`): accuracy {b.accuracy:.3f}, macro-F1 {b.macro_f1:.3f}",
    ]
    return "\n".join(lines)


def write_report(
    evaluations: list[Evaluation], output_dir: Path, model_path: Path, run_dir: Path | None = None
) -> Path:
    """Markdown report with confusion matrices, per-class bars and, given a run, training curves."""
    output_dir.mkdir(parents=True, exist_ok=True)
    shown = model_path.name if model_path.is_absolute() else model_path  # no machine paths
    parts = [f"# classpulse model evaluation\n\nModel: `{shown}`\n"]
    for evaluation in evaluations:
        slug = _slug(evaluation.dataset)
        confusion = plot_confusion(
            evaluation.report,
            output_dir / f"confusion_{slug}.png",
            f"{evaluation.dataset}: confusion",
        )
        bars = plot_per_class(
            evaluation.report,
            output_dir / f"per_class_{slug}.png",
            f"{evaluation.dataset}: precision / recall / F1",
        )
        parts += [
            f"## {evaluation.dataset}\n",
            markdown_table(evaluation),
            f"\n![confusion]({confusion.name}) ![per class]({bars.name})\n",
        ]
    if run_dir is not None:
        curves = plot_training_curves(
            {stage: run_dir / f"history_{stage}.csv" for stage in ("stills", "sequences")},
            output_dir / "training_curves.png",
        )
        parts += ["## Training curves\n", f"![training curves]({curves.name})\n"]
    report = output_dir / "report.md"
    report.write_text("\n".join(parts))
    return report
