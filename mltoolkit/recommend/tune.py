"""``--tune``: random search of the model's hyperparameters on a validation split carved from train.

The test split is never looked at: candidates are fitted on train minus a validation slice and
ranked by NDCG@k on that slice. Candidates come from a seeded generator, so a resumed search
skips the trials already in metrics.jsonl and continues with the same sequence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

SEARCH_SPACES: dict[str, Callable[[np.random.Generator], dict[str, Any]]] = {
    "als": lambda rng: {
        "factors": int(rng.choice([16, 24, 32, 48, 64, 96])),
        "regularization": float(np.exp(rng.uniform(np.log(2.0), np.log(100.0)))),
        "alpha": float(np.exp(rng.uniform(np.log(0.1), np.log(4.0)))),
        "iterations": int(rng.choice([15, 25])),
    },
    "bpr": lambda rng: {
        "factors": int(rng.choice([32, 64, 128])),
        "learning_rate": float(np.exp(rng.uniform(np.log(0.003), np.log(0.1)))),
        "regularization": float(np.exp(rng.uniform(np.log(1e-4), np.log(0.1)))),
        "iterations": int(rng.choice([50, 100, 200])),
    },
    "cosine": lambda rng: {"neighbours": int(np.exp(rng.uniform(np.log(5), np.log(400))))},
    "tfidf": lambda rng: {"neighbours": int(np.exp(rng.uniform(np.log(5), np.log(400))))},
    "bm25": lambda rng: {
        "neighbours": int(np.exp(rng.uniform(np.log(5), np.log(400)))),
        "bm25_k1": float(np.exp(rng.uniform(np.log(0.3), np.log(5.0)))),
        "bm25_b": float(rng.uniform(0.2, 1.0)),
    },
    "ease": lambda rng: {"ease_lambda": float(np.exp(rng.uniform(np.log(20.0), np.log(5000.0))))},
}


def candidates(model: str, defaults: dict[str, Any], trials: int, seed: int) -> list[dict[str, Any]]:
    """Trial 0 is the current settings (so tuning never does worse on validation); the rest are random."""
    space = SEARCH_SPACES[model]
    rng = np.random.default_rng(seed)
    return [dict(defaults)] + [space(rng) for _ in range(trials - 1)]


def search(
    model: str,
    defaults: dict[str, Any],
    evaluate: Callable[[dict[str, Any]], float],
    *,
    trials: int,
    budget_s: float,
    seed: int,
    done: dict[int, float],
    log: Callable[[dict[str, Any]], None],
) -> tuple[dict[str, Any], float]:
    """Run the trials not in ``done`` (trial -> score) until ``trials`` or ``budget_s``; return the best."""
    start = time.perf_counter()
    pool = candidates(model, defaults, trials, seed)
    scores = dict(done)
    for number, params in enumerate(pool):
        if number in scores:
            continue
        if time.perf_counter() - start > budget_s:
            break
        began = time.perf_counter()
        scores[number] = evaluate(params)
        log(
            {
                "phase": "tune",
                "trial": number,
                **params,
                "val_ndcg": scores[number],
                "time_s": time.perf_counter() - began,
            }
        )
    best = max(scores, key=lambda n: scores[n])
    return pool[best], scores[best]
