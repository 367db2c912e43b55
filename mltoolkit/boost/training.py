"""``train()``: read, encode, (cross-validate, tune,) fit with early stopping, write the run directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mltoolkit.boost import tune as tuning
from mltoolkit.boost.booster import MODEL_FILE, check_model_file, lightgbm, load_booster
from mltoolkit.boost.data import Table, read_data
from mltoolkit.boost.finish import CHECKPOINT, RESUME_STATE, default_name, finish_run
from mltoolkit.boost.params import BoostConfig, check_config, lightgbm_params
from mltoolkit.boost.prepare import Prepared, prepare, schema_for, split_validation, target_name, to_dataset
from mltoolkit.boost.schema import Schema
from mltoolkit.core.config import config_dict
from mltoolkit.core.console import info, progress
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.device import resolve_threads
from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.io import atomic_path, read_json, write_json
from mltoolkit.core.runs import Run, resolve_resume, start_run
from mltoolkit.techniques import BOOST


def load_training_data(cfg: BoostConfig, source: str | None) -> tuple[Schema, Prepared, Table]:
    if source is None:
        raise UsageError("no training data: give DATA (a path or -) or a --lightgbm-config naming one")
    table = read_data(source)
    target = target_name(table, cfg.target, cfg.label_column)
    schema = schema_for(table, target, cfg, use_init=cfg.init_score)
    return schema, prepare(table, schema), table


class RoundLogger:
    """A LightGBM callback: metrics.jsonl line and progress bar per round; keeps the model for Ctrl-C.

    ``rounds`` counts the rounds logged, and only those are saved on Ctrl-C: LightGBM has often built
    one more tree (the interrupt lands after its native update, before this callback), which would
    leave metrics.jsonl without that round once the run is resumed.
    """

    def __init__(self, run: Run | None, bar: Any) -> None:
        self.run, self.bar, self.model, self.rounds = run, bar, None, 0

    def __call__(self, env: Any) -> None:
        record: dict[str, Any] = {"round": env.iteration + 1}
        for data_name, metric, value, _ in env.evaluation_result_list or []:
            record[f"{data_name}_{metric}"] = value
        if self.run is not None and len(record) > 1:
            self.run.log(record)
        self.model, self.rounds = env.model, env.iteration + 1
        self.bar.advance(1, **{k: v for k, v in record.items() if k != "round"})


def fit(
    params: dict[str, Any],
    train: Prepared,
    valid: Prepared | None,
    schema: Schema,
    num_rounds: int,
    early_stopping: int,
    run: Run | None = None,
    description: str = "boosting",
    *,
    phase: str = "fit",
    init_model: Path | None = None,
    already: int = 0,
) -> Any:
    """One ``lightgbm.train`` with early stopping on ``valid`` (when there is one).

    With ``run``, Ctrl-C saves the model so far and what is needed to continue it (``--resume``);
    ``init_model`` (``already`` rounds in it) continues such a model for ``num_rounds`` more rounds.
    """
    lgb = lightgbm()
    params = dict(params)
    categorical = schema.categorical_indices
    dtrain = to_dataset(train, params, categorical)
    valid_sets = [to_dataset(valid, params, categorical, reference=dtrain)] if valid is not None else []
    names = ["valid"]
    if phase == "more":  # rounds added to a finished model hold out no rows: they log training-set metrics
        valid_sets, names = [dtrain], ["train"]
    if valid_sets and early_stopping > 0:
        params.setdefault("early_stopping_round", early_stopping)
    with progress(num_rounds, description) as bar:
        logger = RoundLogger(run, bar)
        try:
            booster = lgb.train(
                params,
                dtrain,
                num_boost_round=num_rounds,
                valid_sets=valid_sets,
                valid_names=names,
                callbacks=[logger],
                init_model=load_booster(init_model) if init_model else None,
            )
        except KeyboardInterrupt:
            if run is not None and logger.model is not None:
                done = logger.rounds  # counted from round 1 of the whole run, resumed or not
                with atomic_path(run.checkpoints / CHECKPOINT) as tmp:
                    logger.model.save_model(str(tmp), num_iteration=done)
                total = num_rounds + already
                write_json(run.checkpoints / RESUME_STATE, {"phase": phase, "rounds_done": done,
                                                            "rounds_total": total, "params": params})  # fmt: skip
                run.write_summary({**run.read_summary(), "status": "interrupted", "rounds": done})
            raise
        except lgb.basic.LightGBMError as exc:
            raise DataError(f"LightGBM rejected the data or parameters: {exc}") from None
    return booster


def train(
    cfg: BoostConfig, *, runs_dir: str | Path = "runs", name: str | None = None, resume: str | None = None
) -> TrainResult:
    """Train a model as ``cfg`` says and write the run directory; its summary.json is the result.

    ``resume`` continues a run with the parameters it was trained with (tuning and cross-validation
    are not repeated): an interrupted one for its remaining rounds, a finished one's model.txt for
    more rounds on every training row, up to ``cfg.num_rounds`` rounds in all.
    """
    check_config(cfg)
    if cfg.dask:
        from mltoolkit.boost.distributed import train_on_cluster

        return train_on_cluster(cfg, runs_dir=runs_dir, name=name, resume=resume)
    started = time.perf_counter()
    threads = resolve_threads(cfg.threads)
    schema, data, table = load_training_data(cfg, cfg.data)
    num_class = len(schema.classes or [])
    params = lightgbm_params(cfg, schema.task, num_class, threads)
    seed = cfg.seed if cfg.seed is not None else 0
    valid = None
    if cfg.valid:
        valid_table = read_data(cfg.valid)
        valid = prepare(valid_table, schema)
    state = _resume_state(resume, runs_dir, cfg) if resume else None
    refitting = state is not None and state["phase"] in ("refit", "more")  # a fit on all rows to continue
    use_cv = not refitting and (
        cfg.tune or (state is None and valid is None and cfg.refit and _small(data, cfg, schema))
    )
    train_part, valid_part = data, valid
    if not refitting and not use_cv and valid is None and cfg.valid_fraction > 0:
        # before the run directory: a table too small to split is refused without leaving a run behind
        train_part, valid_part = split_validation(data, cfg.valid_fraction, seed, schema.task == "lambdarank")
    run_name = name or default_name(cfg.data)
    run, _ = start_run(
        BOOST.name, config_dict(cfg), name=run_name, runs_dir=runs_dir, resume=resume, device="cpu", seed=cfg.seed
    )
    width = len(schema.features) or schema.sparse_width
    info(f"run: {run.path}  ({data.rows} rows, {width} features, {threads} threads)")
    result: dict[str, Any] = {"task": schema.task}
    if cfg.cv and state is None:
        result["cv"] = tuning.cross_validate(params, data, schema, cfg, seed)
    if refitting:
        params, best_round = state["params"], state["rounds_total"]
        previous = run.read_summary()  # what the run being continued was validated with
        valid_scores = previous.get("valid", {})
        result.update({k: previous[k] for k in ("validation", "cv", "tuned_params") if k in previous})
        booster = _fit_all(params, data, schema, best_round, run, state)
    elif use_cv:
        params, valid_scores, best_round, booster = _fit_by_cv(params, data, schema, cfg, seed, run, result)
    else:
        result["validation"] = (
            f"--valid {cfg.valid}" if valid is not None else f"{cfg.valid_fraction:g} split" if valid_part else "none"
        )
        resumed = _continue_from(state, run, cfg.num_rounds)
        params = state["params"] if state else params
        booster = fit(
            params, train_part, valid_part, schema, resumed["rounds"], cfg.early_stopping, run, **resumed["fit"]
        )
        best_round = booster.best_iteration or booster.current_iteration()
        valid_scores = _best_scores(booster)
        if cfg.refit and valid is None and valid_part is not None and best_round > 0:
            # The split only chose the number of rounds; the final model learns from every training row.
            best_round = max(1, round(best_round * data.rows / train_part.rows))
            info(f"refit on all {data.rows} rows for {best_round} rounds (best round on the split, scaled)")
            run.write_summary({"status": "refitting", "valid": valid_scores})
            booster = _fit_all(params, data, schema, best_round, run, None)
    return finish_run(run, booster, schema, params, best_round, valid_scores, time.perf_counter() - started, result)


def _fit_by_cv(
    params: dict[str, Any],
    data: Prepared,
    schema: Schema,
    cfg: BoostConfig,
    seed: int,
    run: Run,
    result: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], int, Any]:
    """Rounds (and, with --tune, parameters) chosen by k-fold CV, then one fit on every row.

    Returns the parameters, the CV scores, the rounds of the final fit and its booster; ``result`` gets
    how the run was validated (and the tuned parameters).
    """
    if cfg.tune:
        chosen = _tune(params, data, schema, cfg, seed)
        result["tuned_params"] = {k: chosen["params"][k] for k in tuning.SEARCHED if k in chosen["params"]}
    else:
        info(f"small table: rounds chosen by {tuning.TUNE_FOLDS}-fold CV rather than one noisy split")
        folds = tuning.kfold(data, tuning.TUNE_FOLDS, seed, schema.task == "lambdarank")
        chosen = tuning.cv_curve(params, data, schema, folds, cfg.num_rounds, cfg.early_stopping, "cv")
        chosen["params"] = params
    result["validation"] = f"{tuning.TUNE_FOLDS}-fold CV on the training rows"
    for record in chosen["curve"]:
        run.log(record)
    best_round = max(1, round(chosen["round"] * tuning.TUNE_FOLDS / (tuning.TUNE_FOLDS - 1)))
    info(f"final fit on all {data.rows} rows for {best_round} rounds (best CV round {chosen['round']}, scaled)")
    run.write_summary({"status": "refitting", "valid": chosen["scores"]})
    booster = _fit_all(chosen["params"], data, schema, best_round, run, None)
    return chosen["params"], chosen["scores"], best_round, booster


SMALL_SPLIT_ROWS, SMALL_SPLIT_GROUPS = 2000, 200


def _small(data: Prepared, cfg: BoostConfig, schema: Schema) -> bool:
    """Would the validation split be too small to pick a round count from (noise larger than the gains)?"""
    if cfg.valid_fraction <= 0 or cfg.early_stopping <= 0:
        return False
    units = len(data.group) if schema.task == "lambdarank" else data.rows
    if units < 2 * tuning.TUNE_FOLDS:  # too few to fold: the split it is
        return False
    return units * cfg.valid_fraction < (SMALL_SPLIT_GROUPS if schema.task == "lambdarank" else SMALL_SPLIT_ROWS)


def _tune(params: dict[str, Any], data: Prepared, schema: Schema, cfg: BoostConfig, seed: int) -> dict[str, Any]:
    """``--tune``: the search, each candidate scored by CV on the same folds of the training rows."""
    folds = tuning.kfold(data, tuning.TUNE_FOLDS, seed, schema.task == "lambdarank")
    rounds, patience = max(cfg.num_rounds, tuning.MAX_ROUNDS), cfg.early_stopping or 50

    def evaluate(candidate: dict[str, Any], label: str) -> dict[str, Any]:
        return tuning.cv_curve(candidate, data, schema, folds, rounds, patience, label)

    objectives = tuning.other_objectives(params, data, cfg)
    return tuning.search(params, evaluate, trials=cfg.tune_trials, seed=seed, objectives=objectives)


def _fit_all(
    params: dict[str, Any], data: Prepared, schema: Schema, rounds: int, run: Run, state: dict[str, Any] | None
) -> Any:
    """The final model on every training row for a fixed number of rounds (continuing ``state`` if given)."""
    resumed = _continue_from(state, run, rounds)
    params = {k: v for k, v in params.items() if k != "early_stopping_round"}
    phase = "more" if state is not None and state["phase"] == "more" else "refit"
    return fit(params, data, None, schema, resumed["rounds"], 0, run, phase, phase=phase, **resumed["fit"])


def _resume_state(resume: str, runs_dir: str | Path, cfg: BoostConfig) -> dict[str, Any]:
    """The run's resume.json, once ``cfg`` is known to continue it as it was trained: only --threads and
    --tensorboard may change, and --num-rounds (the new total) unless it stopped in the final refit."""
    run_dir = resolve_resume(resume, runs_dir, BOOST.name)
    state_file = run_dir / "checkpoints" / RESUME_STATE
    if not state_file.exists():
        raise DataError(f"{run_dir}: nothing to resume (no checkpoints/{RESUME_STATE})")
    state, saved = read_json(state_file), read_json(run_dir / "config.json")
    if not isinstance(state, dict) or not {"phase", "rounds_done", "rounds_total", "params"} <= state.keys():
        raise DataError(f"{state_file}: damaged resume state (not what an interrupted train wrote)")
    check_model_file(_resumed_model(run_dir, state))  # before the run is reopened
    grows = state["phase"] in ("fit", "more")
    may_change = ("threads", "tensorboard", "num_rounds") if grows else ("threads", "tensorboard")
    changed = [key for key, value in config_dict(cfg).items() if key not in may_change and saved.get(key) != value]
    if changed:
        flags = ", ".join("--" + key.replace("_", "-") for key in changed)
        raise UsageError(f"--resume continues {run_dir.name}'s model as it was trained: {flags} cannot change")
    if grows:
        if cfg.num_rounds <= state["rounds_done"]:
            raise DataError(f"--num-rounds {cfg.num_rounds}: {run_dir.name} already has {state['rounds_done']} rounds")
        state["rounds_total"] = cfg.num_rounds
    return state


def _continue_from(state: dict[str, Any] | None, run: Run, rounds: int) -> dict[str, Any]:
    """Arguments for ``fit``: all ``rounds`` from scratch, or the rounds left after an interruption."""
    if state is None:
        return {"rounds": rounds, "fit": {}}
    done = state["rounds_done"]
    if state["phase"] in ("fit", "more"):  # drop lines logged after the continued model's last round
        run.keep_metrics_until("round", done)
    info(f"resuming {run.path} at round {done} of {state['rounds_total']}")
    fit_args = {"init_model": _resumed_model(run.path, state), "already": done}
    return {"rounds": max(0, state["rounds_total"] - done), "fit": fit_args}


def _resumed_model(run_dir: Path, state: dict[str, Any]) -> Path:
    """The model a resume continues: the one saved on Ctrl-C, else (adding rounds) the finished model.txt."""
    checkpoint = run_dir / "checkpoints" / CHECKPOINT
    return checkpoint if checkpoint.exists() or state["phase"] != "more" else run_dir / MODEL_FILE


def _best_scores(booster: Any) -> dict[str, float]:
    scores = booster.best_score.get("valid", {})
    return {k: float(v) for k, v in scores.items()}
