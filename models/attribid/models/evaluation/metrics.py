"""Conversion-prediction and credit-agreement metrics (NumPy only, safe for serving code)."""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN when only one class is present.

    >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    labels = np.asarray(labels, dtype=bool)
    n_pos = int(labels.sum())
    n_neg = labels.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities ``probs`` against 0/1 ``labels``.

    >>> round(log_loss(np.array([1, 0]), np.array([0.5, 0.5])), 4)
    0.6931
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def row_agreement(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per row, 1 - total-variation distance between two share vectors: float64 [J].

    >>> row_agreement(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])).tolist()
    [0.5]
    """
    return 1.0 - 0.5 * np.abs(np.asarray(pred) - np.asarray(target)).sum(axis=1)
