"""Summaries of HAR runs: statistics over seeds, confusion matrices, per-class accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SeedSummary:
    """Top-1 accuracy (%) over training seeds.

    Attributes:
        values: one accuracy per seed, in seed order.
        median: the paper's headline statistic (Table 1).
        mean: reported with ``std`` in the ablations (Table 2).
        std: sample standard deviation (ddof = 1); 0 for a single seed.
    """

    values: tuple[float, ...]
    median: float
    mean: float
    std: float

    def to_dict(self) -> dict:
        return {**asdict(self), "values": list(self.values), "std_ddof": 1}


def summarize_seeds(values: Sequence[float]) -> SeedSummary:
    """Median, mean and sample std (ddof = 1) of per-seed accuracies.

    Raises:
        ValueError: no values.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("summarize_seeds needs at least one value")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return SeedSummary(tuple(float(v) for v in arr), float(np.median(arr)), float(arr.mean()), std)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts int64 [K, K]: row = true class, column = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape")
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (labels, predictions), 1)
    return out


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall per true class in percent, float64 [K]; NaN for classes with no test clip."""
    confusion = np.asarray(confusion, dtype=np.float64)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, 100.0 * np.diag(confusion) / support, np.nan)


def balanced_accuracy(confusion: np.ndarray) -> float:
    """Mean per-class recall (%) over the classes with at least one test clip (scikit-learn's balanced accuracy).

    Unlike top-1 it does not reward predicting the majority class: on a 99/212/161 test set a
    recogniser that never predicts the first class scores 79.03 % top-1 but at most 66.67 % here.

    Raises:
        ValueError: no class has a test clip.
    """
    recalls = per_class_accuracy(confusion)
    if np.isnan(recalls).all():
        raise ValueError("balanced accuracy needs at least one labelled clip")
    return float(np.nanmean(recalls))


#: A recogniser that predicts some class for fewer than this share (%) of that class's own
#: training clips has not learnt the class: its seed is flagged as not converged.
CONVERGENCE_MIN_TRAIN_RECALL = 5.0


def is_converged(train_confusion: np.ndarray, min_recall: float = CONVERGENCE_MIN_TRAIN_RECALL) -> bool:
    """True when every class with training clips is predicted for at least ``min_recall`` % of them.

    Args:
        train_confusion: counts [K, K] of the recogniser on its own training clips (rows true).
        min_recall: threshold in percent.
    """
    recalls = per_class_accuracy(train_confusion)
    present = ~np.isnan(recalls)
    return bool(np.all(recalls[present] >= min_recall))
