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

SPACE: dict[str, list[Any]] = {
    "num_leaves": [7, 15, 31, 63],
    "min_data_in_leaf": [5, 20, 50, 100],
    "feature_fraction": [0.5, 0.7, 0.9, 1.0],
    "bagging_fraction": [0.7, 0.8, 1.0],
    "lambda_l2": [0.0, 1.0, 10.0],
    "min_sum_hessian_in_leaf": [1e-3, 1.0, 5.0],
}
SEARCHED = (*SPACE, "bagging_freq")
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
    """Try ``cfg.tune_trials`` candidates (the given parameters first); return the best one's parameters."""
    from mltoolkit.boost.train import fit

    if valid is None:
        raise DataError("--tune needs a validation split: set --valid-fraction > 0 or give --valid")
    rng = np.random.default_rng(cfg.seed or 0)
    candidates = [dict(params)]
    while len(candidates) < cfg.tune_trials:
        trial = dict(params, **{k: v[rng.integers(len(v))] for k, v in SPACE.items()})
        trial["bagging_freq"] = 1 if trial["bagging_fraction"] < 1 else 0
        candidates.append(trial)
    best_params, best_value, rounds = params, None, 0
    for number, trial in enumerate(candidates, start=1):
        booster = fit(trial, train, valid, schema, cfg.num_rounds, cfg.early_stopping or 50, None, f"trial {number}")
        metric, value = _first_score(booster)
        better = best_value is None or (value > best_value if higher_is_better(metric) else value < best_value)
        shown = {k: trial.get(k) for k in SPACE}
        info(f"trial {number}/{len(candidates)}: valid {metric} {value:.6f} at round {booster.best_iteration} {shown}")
        if better:
            best_params, best_value, rounds = trial, value, booster.best_iteration
    info(f"best: valid {metric} {best_value:.6f} at round {rounds} with { ({k: best_params.get(k) for k in SPACE}) }")
    return best_params


def cross_validate(params: dict[str, Any], data: Prepared, schema: Schema, cfg: BoostConfig, seed: int) -> dict:
    """K-fold metrics (mean and std of each fold's best validation scores), printed before the final fit."""
    from mltoolkit.boost.train import fit

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
