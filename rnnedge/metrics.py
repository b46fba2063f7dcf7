"""Classification metrics in numpy (shared by training evaluation and `rnnedge eval`)."""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_metrics(
    predicted: np.ndarray, expected: np.ndarray, classes: int
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix (rows: truth)."""
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (expected, predicted), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    predicted_count = confusion.sum(0)
    actual_count = confusion.sum(1)
    precision = np.divide(
        true_positive, predicted_count, out=np.zeros(classes), where=predicted_count > 0
    )
    recall = np.divide(true_positive, actual_count, out=np.zeros(classes), where=actual_count > 0)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros(classes),
        where=(precision + recall) > 0,
    )
    present = actual_count > 0
    return {
        "accuracy": float(true_positive.sum() / max(1, confusion.sum())),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "confusion": confusion.tolist(),
        "count": int(confusion.sum()),
    }
