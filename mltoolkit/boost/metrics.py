"""Evaluation metrics per task, computed the way LightGBM's own metrics are (so numbers agree to 1e-6).

Weights (a weight column or ``.weight`` side file) weigh rows as in LightGBM; NDCG uses LightGBM's
label gain ``2^label - 1`` and counts a query without any relevant document as 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPSILON = 1e-15
RANK_CUTOFFS = (1, 3, 5, 10)


def _weights(weight: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)


def auc(y: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Area under the ROC curve; tied scores count half (the trapezoid), as LightGBM's AUC does."""
    w = _weights(weight, len(y))
    order = np.argsort(-score, kind="mergesort")
    score, positive, w = score[order], (y[order] > 0.5), w[order]
    boundaries = np.flatnonzero(np.diff(score)) + 1
    starts = np.concatenate([[0], boundaries])
    pos = np.add.reduceat(np.where(positive, w, 0.0), starts)
    neg = np.add.reduceat(np.where(positive, 0.0, w), starts)
    pos_before = np.concatenate([[0.0], np.cumsum(pos)[:-1]])
    area = np.sum(neg * (pos_before + 0.5 * pos))
    total = pos.sum() * neg.sum()
    return float(area / total) if total > 0 else float("nan")


def binary_metrics(y: np.ndarray, proba: np.ndarray, weight: np.ndarray | None = None) -> dict[str, Any]:
    w = _weights(weight, len(y))
    p = np.clip(proba, EPSILON, 1 - EPSILON)
    logloss = -np.sum(w * (y * np.log(p) + (1 - y) * np.log(1 - p))) / w.sum()
    predicted = (proba > 0.5).astype(int)
    truth = y.astype(int)
    matrix = confusion(truth, predicted, 2, w)
    tp, fp, fn = matrix[1][1], matrix[0][1], matrix[1][0]
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {
        "auc": auc(y, proba, weight),
        "log_loss": float(logloss),
        "accuracy": float(np.sum(w * (predicted == truth)) / w.sum()),
        "f1": float(f1),
        "confusion_matrix": matrix,
    }


def multiclass_metrics(y: np.ndarray, proba: np.ndarray, weight: np.ndarray | None = None) -> dict[str, Any]:
    w = _weights(weight, len(y))
    truth = y.astype(int)
    k = proba.shape[1]
    p_true = proba[np.arange(len(truth)), truth]
    logloss = np.sum(w * -np.log(np.maximum(p_true, EPSILON))) / w.sum()
    predicted = proba.argmax(axis=1)
    matrix = np.asarray(confusion(truth, predicted, k, w))
    f1s = []
    for c in range(k):
        tp, fp, fn = matrix[c, c], matrix[:, c].sum() - matrix[c, c], matrix[c, :].sum() - matrix[c, c]
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {
        "multi_logloss": float(logloss),
        "accuracy": float(np.sum(w * (predicted == truth)) / w.sum()),
        "macro_f1": float(np.mean(f1s)),
        "confusion_matrix": matrix.tolist(),
    }


def confusion(truth: np.ndarray, predicted: np.ndarray, k: int, w: np.ndarray) -> list[list[float]]:
    """Rows: true class, columns: predicted class (weighted counts; plain counts without weights)."""
    matrix = np.zeros((k, k))
    np.add.at(matrix, (truth, predicted), w)
    return [[int(v) if float(v).is_integer() else float(v) for v in row] for row in matrix]


def regression_metrics(y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None = None) -> dict[str, Any]:
    w = _weights(weight, len(y))
    err = pred - y
    l2 = float(np.sum(w * err**2) / w.sum())
    mean = np.sum(w * y) / w.sum()
    total = np.sum(w * (y - mean) ** 2)
    return {
        "rmse": float(np.sqrt(l2)),
        "l2": l2,
        "mae": float(np.sum(w * np.abs(err)) / w.sum()),
        "r2": float(1 - np.sum(w * err**2) / total) if total > 0 else float("nan"),
    }


def ranking_metrics(y: np.ndarray, score: np.ndarray, group_sizes: np.ndarray) -> dict[str, Any]:
    """NDCG@k (LightGBM's definition) and MAP@k (a document is relevant when its label > 0), mean per query."""
    ndcg = {k: [] for k in RANK_CUTOFFS}
    average_precision = {k: [] for k in RANK_CUTOFFS}
    start = 0
    for size in group_sizes.astype(int):
        labels, scores = y[start : start + size], score[start : start + size]
        start += size
        order = np.argsort(-scores, kind="stable")
        gains = 2.0 ** labels[order] - 1
        ideal = 2.0 ** np.sort(labels)[::-1] - 1
        discount = 1 / np.log2(np.arange(size) + 2)
        relevant = labels[order] > 0
        hits = np.cumsum(relevant)
        for k in RANK_CUTOFFS:
            best = np.sum(ideal[:k] * discount[:k])
            ndcg[k].append(np.sum(gains[:k] * discount[:k]) / best if best > 0 else 1.0)
            top = relevant[:k]
            denominator = min(k, int(relevant.sum()))
            precision = hits[:k][top] / (np.flatnonzero(top) + 1)
            average_precision[k].append(precision.sum() / denominator if denominator else 1.0)
    out: dict[str, Any] = {f"ndcg@{k}": float(np.mean(v)) for k, v in ndcg.items()}
    out.update({f"map@{k}": float(np.mean(v)) for k, v in average_precision.items()})
    return out


HEADLINE = {"binary": "auc", "multiclass": "multi_logloss", "regression": "l2", "lambdarank": "ndcg@5"}


def task_metrics(
    task: str, y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None, group_sizes: np.ndarray | None
) -> dict[str, Any]:
    """``pred``: probabilities (binary: of class 1; multiclass: n x K), values or ranking scores."""
    if task == "binary":
        return binary_metrics(y, pred, weight)
    if task == "multiclass":
        return multiclass_metrics(y, pred, weight)
    if task == "lambdarank":
        return ranking_metrics(y, pred, group_sizes if group_sizes is not None else np.array([len(y)]))
    return regression_metrics(y, pred, weight)
