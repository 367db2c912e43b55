"""``--cv K`` and ``--tune``: cross-validated metrics and a small search, on the training data only.

Both use K-fold cross-validation (``lightgbm.cv``; whole query groups per fold for ranking) with early
stopping on the mean validation curve: on tables of a few thousand rows one validation split is too
noisy to choose parameters or a round count (ranking on 40 queries stopped at round 9). A test file is
never involved; the winner's parameters and round count (scaled to all rows) train the final model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mltoolkit.boost.booster import lightgbm
from mltoolkit.boost.params import BoostConfig, aliases, parse_params
from mltoolkit.boost.prepare import Prepared, to_dataset
from mltoolkit.boost.schema import Schema
from mltoolkit.core.console import info, progress
from mltoolkit.core.errors import DataError

# Stage 1 chooses the loss at LightGBM's default tree size, where the target suggests another one
# (``other_objectives``). Stage 2 sweeps the tree size, the choice that matters most (stumps win on
# additive targets, deep trees on interactions), each with a learning rate that converges within
# MAX_ROUNDS. Stage 3 tries random regularisation around the best so far, stage 4 the winner with a
# smaller learning rate (more rounds of smaller steps usually generalise a little better).
TREE_SIZES: dict[int, float] = {2: 0.5, 4: 0.1, 8: 0.05, 16: 0.05, 31: 0.05, 63: 0.05}
DEFAULT_LEAVES = 31
SPACE: dict[str, list[Any]] = {
    "min_data_in_leaf": [5, 20, 50, 100],
    "feature_fraction": [0.5, 0.7, 0.9, 1.0],
    "bagging_fraction": [0.7, 0.8, 1.0],
    "lambda_l2": [0.0, 1.0, 10.0],
}
SEARCHED = ("objective", "num_leaves", "learning_rate", *SPACE, "bagging_freq")
MAX_ROUNDS = 5000
SLOWER = 2.5  # stage 4 divides the learning rate by this
TUNE_FOLDS = 3
_HIGHER_IS_BETTER = ("auc", "ndcg", "map", "average_precision")


def higher_is_better(metric: str) -> bool:
    return metric.startswith(_HIGHER_IS_BETTER)


def kfold(data: Prepared, k: int, seed: int, ranking: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train rows, held-out rows) pairs; for ranking, whole query groups go to one fold."""
    rng = np.random.default_rng(seed)
    units = len(data.group) if ranking else data.rows
    if k < 2 or units < k:
        raise DataError(f"cannot make {k} folds of {units} {'query groups' if ranking else 'rows'} (need k >= 2)")
    fold_of = rng.permutation(units) % k
    if ranking:
        fold_of = np.repeat(fold_of, data.group)
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]


def cv_curve(
    params: dict[str, Any],
    data: Prepared,
    schema: Schema,
    folds: list[tuple[np.ndarray, np.ndarray]],
    rounds: int,
    early_stopping: int,
    description: str,
) -> dict[str, Any]:
    """``lightgbm.cv`` over ``folds``: mean (and std) of every metric at the best round of the first one."""
    lgb = lightgbm()
    params = dict(params)
    if early_stopping > 0:
        params["early_stopping_round"] = early_stopping
    with progress(rounds, description) as bar:
        try:
            history = lgb.cv(
                params,
                to_dataset(data, params, schema.categorical_indices),
                num_boost_round=rounds,
                folds=folds,
                callbacks=[lambda env: bar.advance(1)],
            )
        except lgb.basic.LightGBMError as exc:
            raise DataError(f"LightGBM rejected the data or parameters: {exc}") from None
    means = {k[len("valid ") : -len("-mean")]: v for k, v in history.items() if k.endswith("-mean")}
    if not means:
        raise DataError("--tune and --cv need a validation metric; check --param metric=...")
    best_round = len(next(iter(means.values())))
    scores = {m: float(v[-1]) for m, v in means.items()}
    spread = {m: float(history[f"valid {m}-stdv"][-1]) for m in means}
    curve = [{"round": r + 1, **{f"cv_{m}": float(v[r]) for m, v in means.items()}} for r in range(best_round)]
    return {"metric": next(iter(means)), "scores": scores, "std": spread, "round": best_round, "curve": curve}


def other_objectives(params: dict[str, Any], data: Prepared, cfg: BoostConfig) -> list[str]:
    """Losses besides squared error worth one trial for this regression target.

    A target within [0, 1] (a rate, a probability, 0/1 outcomes) is often fitted better by
    cross-entropy on the logit scale, even when it is judged by L2: predictions stay in range and
    the trees do not spend splits on impossible values. Not tried when the user chose the objective,
    when no explicit metric keeps the trials comparable, or with initial scores (which would then
    be read as logits).
    """
    if params.get("objective") != "regression" or "metric" not in params or data.init is not None:
        return []
    if set(parse_params(cfg.params)) & set(aliases("objective")):
        return []
    return ["cross_entropy"] if 0 <= np.min(data.y) and np.max(data.y) <= 1 else []


def search(
    params: dict[str, Any],
    evaluate: Callable[[dict[str, Any], str], dict[str, Any]],
    *,
    trials: int,
    seed: int,
    objectives: list[str],
) -> dict[str, Any]:
    """The loss (``params``' own or one of ``objectives``), the tree size, random regularisation, a slower
    learning rate: ``trials`` candidates, each scored by ``evaluate(candidate, label)`` (a ``cv_curve``).

    Returns the best candidate's ``params``, its mean CV ``scores``, best ``round`` and ``curve``.
    """
    rng = np.random.default_rng(seed)
    best: dict[str, Any] = {}
    number = 0

    def trial(candidate: dict[str, Any]) -> None:
        nonlocal number
        number += 1
        result = evaluate(candidate, f"trial {number}")
        metric, value = result["metric"], result["scores"][result["metric"]]
        shown = {k: candidate[k] for k in SEARCHED if k in candidate}
        info(f"trial {number}/{trials}: cv {metric} {value:.6f} at round {result['round']} {shown}")
        previous = best.get("value")
        if previous is None or (value > previous if higher_is_better(metric) else value < previous):
            best.update(result, params=candidate, value=value)

    # LightGBM's default tree size first, to choose the loss (when there is a choice) for the sweep
    sizes = sorted(TREE_SIZES.items(), key=lambda size: size[0] != DEFAULT_LEAVES)
    trial(dict(params, num_leaves=sizes[0][0], learning_rate=sizes[0][1]))
    for objective in objectives[: trials - number]:
        trial(dict(best["params"], objective=objective))
    for leaves, rate in sizes[1:][: max(0, trials - number)]:
        trial(dict(best["params"], num_leaves=leaves, learning_rate=rate))
    base, tried = best["params"], set()
    while number < trials - 1:
        choice = tuple(int(rng.integers(len(v))) for v in SPACE.values())
        if choice in tried and len(tried) < 100:
            continue
        tried.add(choice)
        candidate = dict(base, **{k: v[i] for (k, v), i in zip(SPACE.items(), choice)})
        candidate["bagging_freq"] = 1 if candidate["bagging_fraction"] < 1 else 0
        trial(candidate)
    if number < trials and best["round"] * SLOWER <= MAX_ROUNDS:
        trial(dict(best["params"], learning_rate=best["params"]["learning_rate"] / SLOWER))
    shown = {k: best["params"][k] for k in SEARCHED if k in best["params"]}
    info(f"best: cv {best['metric']} {best['value']:.6f} at round {best['round']} with {shown}")
    return best


def cross_validate(params: dict[str, Any], data: Prepared, schema: Schema, cfg: BoostConfig, seed: int) -> dict:
    """K-fold metrics (mean and std over folds at the best mean round), printed before the final fit."""
    folds = kfold(data, cfg.cv, seed, schema.task == "lambdarank")
    result = cv_curve(params, data, schema, folds, cfg.num_rounds, cfg.early_stopping, f"cv {cfg.cv}-fold")
    summary = {m: {"mean": v, "std": result["std"][m]} for m, v in result["scores"].items()}
    for name, stats in summary.items():
        info(f"cv {cfg.cv}-fold {name}: {stats['mean']:.6f} +/- {stats['std']:.6f} (round {result['round']})")
    return {**summary, "best_round": result["round"]}
