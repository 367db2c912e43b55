"""``--tune``: seeded random search, then local refinement, on validation splits carved from train.

The test split is never looked at. Each candidate is fitted on train minus a validation slice and
scored by NDCG@k, averaged over ``folds`` slices drawn with different seeds (one slice is noisy
enough on MovieLens-100K to pick a worse model than the defaults). The first trial is the current
settings; the first 60% of the trials sample the whole space, the rest perturb the best so far.
Candidates come from one seeded generator and finished trials are replayed from metrics.jsonl, so
a resumed search continues the same sequence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

RANDOM_SHARE = 0.6
LOCAL_SPREAD = 0.25  # sd of the log-normal step around the best value of a real-valued parameter


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


SEARCH_SPACES: dict[str, Callable[[np.random.Generator], dict[str, Any]]] = {
    "als": lambda rng: {
        "factors": int(rng.choice([16, 24, 32, 48, 64, 96])),
        "regularization": _log_uniform(rng, 2.0, 100.0),
        "alpha": _log_uniform(rng, 0.1, 4.0),
        "iterations": int(rng.choice([15, 25])),
    },
    "bpr": lambda rng: {
        "factors": int(rng.choice([32, 64, 128])),
        "learning_rate": _log_uniform(rng, 0.003, 0.1),
        "regularization": _log_uniform(rng, 1e-4, 0.1),
        "iterations": int(rng.choice([50, 100, 200])),
    },
    "cosine": lambda rng: {"neighbours": int(_log_uniform(rng, 5, 400))},
    "tfidf": lambda rng: {"neighbours": int(_log_uniform(rng, 5, 400))},
    "bm25": lambda rng: {
        "neighbours": int(_log_uniform(rng, 5, 400)),
        "bm25_k1": _log_uniform(rng, 0.3, 5.0),
        "bm25_b": float(rng.uniform(0.2, 1.0)),
    },
    "ease": lambda rng: {"ease_lambda": _log_uniform(rng, 20.0, 5000.0)},
}


def _near(rng: np.random.Generator, best: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """A step from ``best``: real values scaled log-normally, whole numbers kept or swapped for ``fresh``'s."""
    step = {}
    for key, value in best.items():
        if isinstance(value, float):
            step[key] = float(value * np.exp(rng.normal(0.0, LOCAL_SPREAD)))
        else:
            step[key] = value if rng.random() < 0.5 else fresh[key]
    return step


def search(
    model: str,
    current: dict[str, Any],
    evaluate: Callable[[dict[str, Any]], float],
    *,
    trials: int,
    budget_s: float,
    seed: int,
    done: dict[int, tuple[dict[str, Any], float]],
    log: Callable[[dict[str, Any]], None],
) -> tuple[dict[str, Any], float]:
    """Run trials (replaying those in ``done``) until ``trials`` or ``budget_s``; return the best and its score."""
    space = SEARCH_SPACES[model]
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    results: list[tuple[dict[str, Any], float]] = []
    for number in range(trials):
        fresh = space(rng)  # drawn every trial, replayed or not, so the sequence never shifts
        if number == 0:
            params = dict(current)
        elif number < max(2, int(RANDOM_SHARE * trials)):
            params = fresh
        else:
            params = _near(rng, max(results, key=lambda r: r[1])[0], fresh)
        if number in done:
            results.append(done[number])
            continue
        if results and time.perf_counter() - start > budget_s:  # the first trial runs whatever the budget
            break
        began = time.perf_counter()
        score = evaluate(params)
        results.append((params, score))
        log({"phase": "tune", "trial": number, **params, "val_ndcg": score, "time_s": time.perf_counter() - began})
    return max(results, key=lambda r: r[1])
