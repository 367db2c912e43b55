"""Ranking metrics at K from a top-K list per user, defined exactly as implicit.evaluation computes them.

Users with no held-out item are skipped. ``precision_implicit`` is implicit's ``precision_at_k``:
hits summed over users divided by the sum of ``min(K, |test items|)`` (recall-like for users with
few test items); ``precision`` is the standard hits / K averaged over users. AUC is implicit's
"limited AUC": items ranked below K count as ties. Coverage is the share of the catalogue that
appears in at least one user's list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

PRECISION_DEFINITION = (
    "precision@k = hits / k averaged over test users (standard); precision_implicit@k = "
    "sum of hits / sum of min(k, |test items|) over test users (implicit.evaluation.precision_at_k)"
)


def ranking_metrics(recommended: np.ndarray, test: sp.csr_matrix, k: int) -> dict[str, float]:
    """Metrics of ``recommended`` (users x at least min(k, items) ids, -1 = empty slot) against ``test``."""
    recommended = recommended[:, :k]
    n_items = test.shape[1]
    counts = np.diff(test.indptr)
    users = np.flatnonzero(counts > 0)
    if len(users) == 0:
        return {"users": 0}
    recs = recommended[users]
    valid = recs >= 0
    test_rows = test[users]
    rows = np.repeat(np.arange(len(users)), recs.shape[1])
    hits = (np.asarray(test_rows[rows, np.maximum(recs, 0).ravel()]).ravel() != 0).reshape(recs.shape) & valid
    n_pos = counts[users].astype(np.float64)
    capped = np.minimum(k, n_pos)
    ranks = np.arange(1, recs.shape[1] + 1)
    cumulative_hits = np.cumsum(hits, axis=1)
    gains = 1.0 / np.log2(np.arange(2, recs.shape[1] + 2))  # a list never outgrows the catalogue, whatever k is
    ideal = np.cumsum(gains)[capped.astype(int) - 1]
    # implicit's limited AUC: positives ranked in the list beat the misses below them; the rest tie
    misses = np.cumsum(~hits, axis=1)
    hit_count = cumulative_hits[:, -1]
    auc = np.where(~hits, cumulative_hits, 0).sum(axis=1)
    n_neg = n_items - n_pos
    auc = auc + (hit_count + n_pos) / 2.0 * (n_neg - misses[:, -1])
    return {
        "precision": float((hit_count / k).mean()),
        "precision_implicit": float(hit_count.sum() / capped.sum()),
        "recall": float((hit_count / n_pos).mean()),
        "map": float(((cumulative_hits / ranks * hits).sum(axis=1) / capped).mean()),
        "ndcg": float(((hits * gains).sum(axis=1) / ideal).mean()),
        "auc": float((auc / (n_pos * n_neg)).mean()),
        "coverage": float(len(np.unique(recommended[recommended >= 0])) / n_items),
        "users": int(len(users)),
    }


def metric_names(k: int) -> dict[str, str]:
    """Column names with the cut-off: ``ndcg`` -> ``ndcg@10``."""
    return {
        name: (f"{name}@{k}" if name not in ("auc", "coverage", "users") else name)
        for name in ("precision", "precision_implicit", "recall", "map", "ndcg", "auc", "coverage", "users")
    }


def with_k(metrics: dict[str, float], k: int) -> dict[str, float]:
    names = metric_names(k)
    return {names[key]: value for key, value in metrics.items()}
