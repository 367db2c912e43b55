"""``train()``: read ratings, hold out a test split, (tune,) fit, evaluate, refit on everything, save.

The loop a user of implicit writes by hand, in order::

    ratings -> split -> confidence(train) -> model.fit -> model.recommend(all users) -> metrics
            -> confidence(all) -> model.fit -> model.npz (what predict serves)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.config import config_dict
from mltoolkit.core.console import info, warn
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.errors import DataError
from mltoolkit.core.io import source_name
from mltoolkit.core.params import absolute_paths, check_config
from mltoolkit.core.runs import Run, run_name, start_run
from mltoolkit.recommend import tune
from mltoolkit.recommend.config import RecommendConfig, model_params, resolve_model_defaults
from mltoolkit.recommend.data import ColumnSpec, Interactions, confidence, load_interactions
from mltoolkit.recommend.metrics import ranking_metrics, with_k
from mltoolkit.recommend.models import (
    Popularity,
    Recommender,
    build_model,
    check_fit_memory,
    limit_blas,
    thread_count,
    use_gpu_for,
)
from mltoolkit.recommend.plots import plot_metrics, plot_tune
from mltoolkit.recommend.split import split
from mltoolkit.recommend.store import EVAL_MODEL_FILE, MODEL_FILE, Bundle, checkpoint, save_bundle, save_split
from mltoolkit.techniques import RECOMMEND

if TYPE_CHECKING:
    import scipy.sparse as sp


def column_spec(config: RecommendConfig | dict[str, Any]) -> ColumnSpec:
    source = config if isinstance(config, dict) else vars(config)
    return ColumnSpec(
        source.get("user_col"), source.get("item_col"), source.get("rating_col"), source.get("time_col"),
        source.get("columns"),
    )  # fmt: skip


def new_model(config: RecommendConfig, threads: int, use_gpu: bool = False) -> Recommender:
    """An unfitted model of ``config``, with the BLAS pools sized for it first."""
    limit_blas(config.model, threads)
    return build_model(config.model, model_params(config), threads, config.seed, use_gpu)


def recommend_all(model: Recommender, user_items: sp.csr_matrix, k: int) -> np.ndarray:
    """Top-k unseen items for every row of ``user_items`` (ids only; -1 marks an empty slot).

    k is capped at the catalogue: no list can be longer, and a typed k must not size an allocation.
    """
    ids, _ = model.recommend(np.arange(user_items.shape[0]), user_items, min(k, user_items.shape[1]))
    return ids


def fit_and_score(
    config: RecommendConfig, train: sp.csr_matrix, test: sp.csr_matrix, threads: int, use_gpu: bool = False
) -> tuple[Recommender, sp.csr_matrix, dict[str, float], dict[str, float]]:
    """Fit on ``train`` ratings, rank every user's unseen items, score against ``test``; time both steps."""
    user_items = confidence(train, config.confidence, config.alpha)
    model = new_model(config, threads, use_gpu)
    began = time.perf_counter()
    model.fit(user_items)
    fitted = time.perf_counter()
    recommended = recommend_all(model, user_items, config.k)
    timings = {"fit_s": fitted - began, "recommend_s": time.perf_counter() - fitted}
    return model, user_items, ranking_metrics(recommended, test, config.k), timings


def fit_popularity(ratings: sp.csr_matrix) -> Popularity:
    """The baseline of the metrics and the fallback of predict: interaction counts per item."""
    popularity = Popularity({}, 1, 0)
    popularity.fit(ratings)
    return popularity


@dataclass
class Holdout:
    """The interactions held out for the test, and the validation folds --tune carves from train."""

    train: sp.csr_matrix
    test: sp.csr_matrix
    folds: list[tuple[sp.csr_matrix, sp.csr_matrix]]


def _check(config: RecommendConfig, interactions: Interactions, name: str) -> None:
    """Settings that cannot work on this data, refused before a run directory is made."""
    ratings = interactions.ratings
    if config.tune and config.test_fraction == 0:
        raise DataError("--tune needs a held-out split to carve validation from; use --test-fraction > 0")
    if config.confidence == "log" and ratings.data.min() < 0:
        coo = ratings.tocoo()
        first = int(np.argmax(coo.data < 0))
        raise DataError(
            f"{name}: --confidence log needs ratings >= 0, but user {interactions.users[coo.row[first]]} rated "
            f"item {interactions.items[coo.col[first]]} {coo.data[first]:g}; use --confidence linear or --min-rating 0"
        )
    confidence(ratings, config.confidence, config.alpha)  # refuses confidences that overflow
    check_fit_memory(config.model, model_params(config), *ratings.shape)


def _holdout(config: RecommendConfig, interactions: Interactions, name: str) -> Holdout | None:
    """The test split (and --tune's folds), checked to hold something to score before any run exists."""
    if config.test_fraction == 0:
        return None
    ratings = interactions.ratings
    train_r, test_r, train_times = split(ratings, interactions.times, config.test_fraction, config.split, config.seed)
    _require_positives(train_r, test_r, f"{name}: the {config.split} test split", config.test_fraction)
    folds = []
    if config.tune and config.model in tune.SEARCH_SPACES:
        offsets = (1,) if config.split == "temporal" else (1, 2)  # a temporal slice is the same for every seed
        folds = [split(train_r, train_times, config.test_fraction, config.split, config.seed + o)[:2] for o in offsets]
        for fit, val in folds:
            _require_positives(fit, val, f"{name}: --tune's validation split", config.test_fraction)
    return Holdout(train_r, test_r, folds)


def _require_positives(train: sp.csr_matrix, test: sp.csr_matrix, what: str, fraction: float) -> None:
    """A split with nothing to fit on, or no positive rating to score against, would give metrics of no one."""
    if train.nnz == 0 or test.nnz == 0:
        raise DataError(
            f"{what} leaves {train.nnz} interactions to fit and {test.nnz} positive ones to score (--test-fraction "
            f"{fraction:g}); give more interactions, or --test-fraction 0 to skip the evaluation"
        )


def train(
    config: RecommendConfig,
    *,
    runs_dir: str | Path = "runs",
    name: str | None = None,
    resume: str | None = None,
) -> TrainResult:
    """Fit a recommender on the ratings table ``config.data`` and write a run directory.

    ``resume`` reopens that run with ``config`` as given (the CLI layers the run's saved config under the
    new flags): its finished --tune trials are replayed, the rest (test, refit) is computed again.
    """
    started = time.perf_counter()
    if config.data is None:
        raise DataError("no data: set the config's data to a ratings table (a path, or - for stdin)")
    check_config(config)  # the ranges, for callers of the Python API (the CLI has checked them already)
    config = resolve_model_defaults(absolute_paths(replace(config)))  # the caller's config is left as it was
    threads = thread_count(config.threads)
    use_gpu = use_gpu_for(config.model, config.device)
    interactions = load_interactions(
        config.data, column_spec(config), duplicates=config.duplicates, min_rating=config.min_rating
    )
    source = source_name(config.data)
    _check(config, interactions, source)
    holdout = _holdout(config, interactions, source)
    ratings = interactions.ratings
    info(f"{source}: {ratings.shape[0]} users, {ratings.shape[1]} items, {ratings.nnz} interactions")
    name = name or run_name(config.model, Path(source).stem)  # <stdin>: als-stdin
    run, resumed = start_run(
        RECOMMEND.name, config_dict(config), name=name, runs_dir=runs_dir, resume=resume,
        device="cuda" if use_gpu else "cpu", seed=config.seed,
    )  # fmt: skip
    if resumed:  # keep the finished --tune trials (replayed), drop the rest: it is computed again
        run.rewrite_metrics(_finished_trials(run, config.model))
    final: dict[str, Any] = {}
    if holdout is not None:
        config, final = _fit_and_test(run, resumed, interactions, holdout, config, threads, use_gpu)
    if config.refit or holdout is None:
        user_items = confidence(ratings, config.confidence, config.alpha)
        model = new_model(config, threads, use_gpu)
        began = time.perf_counter()
        model.fit(user_items)
        info(f"refit on all {ratings.nnz} interactions in {time.perf_counter() - began:.2f} s")
        bundle = Bundle(model, user_items, fit_popularity(ratings), interactions.users, interactions.items)
        save_bundle(checkpoint(run.path, MODEL_FILE), bundle, config_dict(config))
    run.write_config(config_dict(config))  # tuned values included
    headline = f"ndcg@{config.k}"
    return run.finish(
        "completed", {"metric": headline, "value": final.get(headline)}, best=final, final=final,
        wall_time_s=time.perf_counter() - started, run_dir=str(run.path), model=config.model,
        users=ratings.shape[0], items=ratings.shape[1], interactions=int(ratings.nnz),
        best_checkpoint=str(checkpoint(run.path, MODEL_FILE)),
    )  # fmt: skip


def _fit_and_test(
    run: Run,
    resumed: bool,
    interactions: Interactions,
    holdout: Holdout,
    config: RecommendConfig,
    threads: int,
    use_gpu: bool,
) -> tuple[RecommendConfig, dict[str, Any]]:
    """(Tune,) fit on the train split, score it and popularity on the test split.

    Returns the config (with --tune's values: the refit and config.json use them) and the test metrics."""
    train_r, test_r = holdout.train, holdout.test
    info(f"held out {test_r.nnz} of {interactions.ratings.nnz} interactions ({config.split} split, seed {config.seed})")
    if config.tune:
        config = _tune(run, resumed, config, holdout.folds, threads, use_gpu)
    model, user_items, metrics, timings = fit_and_score(config, train_r, test_r, threads, use_gpu)
    popularity = fit_popularity(train_r)
    baseline = ranking_metrics(recommend_all(popularity, train_r, config.k), test_r, config.k)
    final = {**with_k(metrics, config.k), **timings}
    run.log({"phase": "test", "model": config.model, **final})
    run.log({"phase": "test", "model": "popularity", **with_k(baseline, config.k)})
    plot_metrics(run.plots / "metrics.png", config.model, metrics, baseline, config.k)
    info(
        f"test: NDCG@{config.k} {metrics['ndcg']:.4f} (popularity {baseline['ndcg']:.4f}), "
        f"fit {timings['fit_s']:.2f} s, recommend {timings['recommend_s']:.2f} s"
    )
    bundle = Bundle(model, user_items, popularity, interactions.users, interactions.items)
    save_split(run.path, train_r, test_r)
    save_bundle(checkpoint(run.path, EVAL_MODEL_FILE if config.refit else MODEL_FILE), bundle, config_dict(config))
    return config, final


def _tune(
    run: Run,
    resumed: bool,
    config: RecommendConfig,
    folds: list[tuple[sp.csr_matrix, sp.csr_matrix]],
    threads: int,
    use_gpu: bool,
) -> RecommendConfig:
    if config.model not in tune.SEARCH_SPACES:
        warn(f"{config.model} has no hyperparameters to tune; fitting it as is")
        return config
    current = {key: getattr(config, key) for key in tune.SEARCH_SPACES[config.model](np.random.default_rng(0))}
    records = _finished_trials(run, config.model) if resumed else []
    done = {int(r["trial"]): ({k: r[k] for k in current}, float(r["val_ndcg"])) for r in records}
    if done:
        info(f"resuming the search: {len(done)} trials already done")

    def evaluate(params: dict[str, Any]) -> float:
        trial = replace(config, **params)
        return float(np.mean([fit_and_score(trial, fit, val, threads, use_gpu)[2]["ndcg"] for fit, val in folds]))

    info(f"tuning {config.model}: up to {config.tune_trials} trials or {config.tune_time:g} s on validation splits")
    best, score = tune.search(
        config.model, current, evaluate, trials=config.tune_trials, budget_s=config.tune_time, seed=config.seed,
        done=done, log=lambda record: run.log({**record, "model": config.model}),
    )  # fmt: skip
    info(f"best validation NDCG@{config.k} {score:.4f} with {best}")
    plot_tune(run.plots / "tune.png", _finished_trials(run, config.model))
    return replace(config, **best)


def _finished_trials(run: Run, model: str) -> list[dict[str, Any]]:
    """The --tune trials of ``model`` in metrics.jsonl: a resume with another --model starts the search over."""
    return [r for r in run.read_metrics() if r.get("phase") == "tune" and r.get("model", model) == model]
