"""Classification metrics in plain numpy (no scikit-learn needed): the numbers the model card reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassificationReport:
    """Per-class precision/recall/F1 (in class order), support, accuracy and the confusion matrix."""

    classes: tuple[str, ...]
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    accuracy: float
    confusion: np.ndarray  # rows: true class, columns: predicted class

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean())


def classification_report(
    true: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]
) -> ClassificationReport:
    """``true``/``predicted``: int class indices (N,). Undefined ratios (0/0) count as 0."""
    k = len(classes)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (true, predicted), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted_count = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(tp, predicted_count, out=np.zeros(k), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(k), where=denominator > 0)
    accuracy = float(tp.sum() / max(1, confusion.sum()))
    return ClassificationReport(classes, precision, recall, f1, support, accuracy, confusion)
