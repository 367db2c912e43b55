"""``--cv K`` and ``--tune``: cross-validated metrics and a small random search, on training data only.

The search scores each candidate by early stopping on the validation split carved out of the training
data (or ``--valid``), never on a test file; the best candidate's parameters then train the final model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mltoolkit.boost.params import BoostConfig
from mltoolkit.boost.prepare import Prepared
from mltoolkit.boost.schema import Schema
from mltoolkit.core.console import info
from mltoolkit.core.errors import DataError

# Stage 1 sweeps the tree size, the choice that matters most (stumps win on additive targets, deep
# trees on interactions), each with a learning rate that lets it converge in a few thousand rounds.
TREE_SIZES: dict[int, float] = {2: 0.5, 4: 0.2, 8: 0.1, 16: 0.1, 31: 0.05, 63: 0.05}
# Stage 2 tries random regularisation around the best tree size.
SPACE: dict[str, list[Any]] = {
    "min_data_in_leaf": [5, 20, 50, 100],
    "feature_fraction": [0.5, 0.7, 0.9, 1.0],
    "bagging_fraction": [0.7, 0.8, 1.0],
    "lambda_l2": [0.0, 1.0, 10.0],
}
SEARCHED = ("num_leaves", "learning_rate", *SPACE, "bagging_freq")
MAX_ROUNDS = 5000
_HIGHER_IS_BETTER = ("auc", "ndcg", "map", "average_precision")


def higher_is_better(metric: str) -> bool:
    return metric.startswith(_HIGHER_IS_BETTER)


def _first_score(booster: Any) -> tuple[str, float]:
    scores = booster.best_score.get("valid", {})
    if not scores:
        raise DataError("--tune and --cv need a validation metric; check --param metric=...")
    name, value = next(iter(scores.items()))
    return name, float(value)


def search(params: dict[str, Any], train: Prepared, valid: Prepared | None, schema: Schema, cfg: BoostConfig) -> dict:
    """Tree-size sweep, then random regularisation (``cfg.tune_trials`` fits in all); return the best parameters."""
    from mltoolkit.boost.training import fit

    if valid is None:
        raise DataError("--tune needs a validation split: set --valid-fraction > 0 or give --valid")
    rng = np.random.default_rng(cfg.seed or 0)
    best: dict[str, Any] = {"params": params, "value": None, "round": 0}
    number = 0

    def trial(candidate: dict[str, Any]) -> None:
        nonlocal number
        number += 1
        rounds = max(cfg.num_rounds, MAX_ROUNDS)
        booster = fit(candidate, train, valid, schema, rounds, cfg.early_stopping or 50, None, f"trial {number}")
        metric, value = _first_score(booster)
        shown = {k: candidate.get(k) for k in SEARCHED if k in candidate}
        info(f"trial {number}/{cfg.tune_trials}: valid {metric} {value:.6f} at round {booster.best_iteration} {shown}")
        previous = best["value"]
        if previous is None or (value > previous if higher_is_better(metric) else value < previous):
            best.update(params=candidate, value=value, round=booster.best_iteration, metric=metric)

    for leaves, rate in list(TREE_SIZES.items())[: cfg.tune_trials]:
        trial(dict(params, num_leaves=leaves, learning_rate=rate))
    base = best["params"]
    while number < cfg.tune_trials:
        candidate = dict(base, **{k: v[rng.integers(len(v))] for k, v in SPACE.items()})
        candidate["bagging_freq"] = 1 if candidate["bagging_fraction"] < 1 else 0
        trial(candidate)
    shown = {k: best["params"].get(k) for k in SEARCHED if k in best["params"]}
    info(f"best: valid {best['metric']} {best['value']:.6f} at round {best['round']} with {shown}")
    return best["params"]


def cross_validate(params: dict[str, Any], data: Prepared, schema: Schema, cfg: BoostConfig, seed: int) -> dict:
    """K-fold metrics (mean and std of each fold's best validation scores), printed before the final fit."""
    from mltoolkit.boost.training import fit

    k = cfg.cv
    if k < 2:
        raise DataError(f"--cv {k}: need at least 2 folds")
    rng = np.random.default_rng(seed)
    ranking = schema.task == "lambdarank"
    units = len(data.group) if ranking else data.rows
    if units < k:
        raise DataError(f"--cv {k}: only {units} {'groups' if ranking else 'rows'} to split")
    fold_of = rng.permutation(units) % k
    scores: dict[str, list[float]] = {}
    for fold in range(k):
        train, valid = _fold(data, fold_of, fold, ranking)
        booster = fit(params, train, valid, schema, cfg.num_rounds, cfg.early_stopping, None, f"cv fold {fold + 1}/{k}")
        for name, value in booster.best_score.get("valid", {}).items():
            scores.setdefault(name, []).append(float(value))
        scores.setdefault("best_round", []).append(float(booster.best_iteration or booster.current_iteration()))
    summary = {name: {"mean": float(np.mean(v)), "std": float(np.std(v))} for name, v in scores.items()}
    for name, stats in summary.items():
        info(f"cv {k}-fold {name}: {stats['mean']:.6f} +/- {stats['std']:.6f}")
    return summary


def _fold(data: Prepared, fold_of: np.ndarray, fold: int, ranking: bool) -> tuple[Prepared, Prepared]:
    if not ranking:
        return data.subset(np.flatnonzero(fold_of != fold)), data.subset(np.flatnonzero(fold_of == fold))
    starts = np.r_[0, np.cumsum(data.group)[:-1]]
    parts = []
    for mask in (fold_of != fold, fold_of == fold):
        rows = np.concatenate([np.arange(s, s + g) for s, g in zip(starts[mask], data.group[mask])])
        part = data.subset(rows)
        part.group = data.group[mask]
        parts.append(part)
    return parts[0], parts[1]
