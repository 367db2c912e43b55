"""LightGBM parameters: the config, LightGBM CLI ``train.conf`` files and ``--param key=value`` mapped faithfully."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltoolkit.boost.data import parse_value, read_lightgbm_config
from mltoolkit.core.errors import DataError


@dataclass
class BoostConfig:
    """Everything ``mltk boost train`` needs; written whole to config.json."""

    data: str | None = None
    target: str | None = None
    label_column: int | None = None
    task: str = "auto"
    weight: str | None = None
    group: str | None = None
    id: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    valid: str | None = None
    valid_fraction: float = 0.2
    num_rounds: int = 1000
    learning_rate: float = 0.05
    num_leaves: int = 31
    early_stopping: int = 50
    params: list[str] = field(default_factory=list)
    cv: int = 0
    tune: bool = False
    tune_trials: int = 12
    refit: bool = True
    init_score: bool = True
    seed: int | None = None
    threads: int = 0
    deterministic: bool = False
    lightgbm_config: str | None = None
    dask: str | None = None  # a scheduler address or local[:N[:MEMORY]]: train on a Dask cluster


def check_config(cfg: BoostConfig) -> None:
    """Reject values no run could use before anything is read (LightGBM would fail later, less clearly)."""
    at_least = {"num_rounds": (cfg.num_rounds, 1), "num_leaves": (cfg.num_leaves, 2),
                "early_stopping": (cfg.early_stopping, 0), "tune_trials": (cfg.tune_trials, 1)}  # fmt: skip
    for key, (value, minimum) in at_least.items():
        if value < minimum:
            raise DataError(f"--{key.replace('_', '-')} must be at least {minimum} (got {value})")
    if cfg.learning_rate <= 0:
        raise DataError(f"--learning-rate must be positive (got {cfg.learning_rate})")
    if not 0 <= cfg.valid_fraction < 1:
        raise DataError(f"--valid-fraction must be at least 0 and below 1 (got {cfg.valid_fraction})")
    if cfg.cv == 1 or cfg.cv < 0:
        raise DataError(f"--cv must be 0 (off) or at least 2 folds (got {cfg.cv})")


# LightGBM CLI keys that say where files are or how the CLI runs, not how to train.
_CLI_ONLY = {
    "task", "output_model", "output_result", "input_model", "num_machines", "local_listen_port",
    "machine_list_file", "machine_list_filename", "is_save_binary_file", "save_binary", "is_save_binary",
    "use_two_round_loading", "two_round", "two_round_loading", "metric_freq", "output_freq",
    "is_training_metric", "training_metric", "train_metric", "tree_learner", "tree", "tree_type",
    "is_enable_sparse", "is_sparse", "enable_sparse", "sparse", "config", "config_file",
}  # fmt: skip
_ALIASES = {
    "data": ("data", "train", "train_data", "train_data_file", "data_filename"),
    "valid": ("valid_data", "valid", "test", "test_data", "valid_data_file", "valid_filenames"),
    "num_rounds": ("num_trees", "num_tree", "num_iterations", "num_iteration", "n_iter", "num_round",
                   "num_rounds", "nrounds", "num_boost_round", "n_estimators", "max_iter"),
    "learning_rate": ("learning_rate", "shrinkage_rate", "eta"),
    "num_leaves": ("num_leaves", "num_leaf", "max_leaves", "max_leaf", "max_leaf_nodes"),
    "early_stopping": ("early_stopping_round", "early_stopping_rounds", "early_stopping", "n_iter_no_change"),
    "objective": ("objective", "objective_type", "app", "application", "loss"),
    "label_column": ("label_column", "label"),
}  # fmt: skip
OBJECTIVE_KEYS = _ALIASES["objective"]
_TASK_OF_OBJECTIVE = {"binary": "binary", "multiclass": "multiclass", "multiclassova": "multiclass",
                      "multiclass_ova": "multiclass", "ova": "multiclass", "ovr": "multiclass",
                      "lambdarank": "lambdarank", "rank_xendcg": "lambdarank", "xendcg": "lambdarank"}  # fmt: skip


def _pop_alias(params: dict[str, str], key: str) -> str | None:
    found = None
    for alias in _ALIASES[key]:
        if alias in params:
            found = params.pop(alias)
    return found


def config_from_lightgbm(path: str | Path) -> dict[str, Any]:
    """A config layer from a LightGBM CLI config file; paths in it are relative to the file."""
    path = Path(path)
    raw = read_lightgbm_config(path)
    layer: dict[str, Any] = {"lightgbm_config": str(path), "valid_fraction": 0.0, "early_stopping": 0,
                             "num_rounds": 100, "learning_rate": 0.1, "num_leaves": 31, "refit": False}  # fmt: skip
    for key in ("data", "valid"):
        value = _pop_alias(raw, key)
        if value:
            first = value.split(",")[0].strip()
            layer[key] = str(path.parent / first) if not Path(first).is_absolute() else first
    for key, kind in (("num_rounds", int), ("learning_rate", float), ("num_leaves", int), ("early_stopping", int)):
        value = _pop_alias(raw, key)
        if value is not None:
            try:
                layer[key] = kind(value)
            except ValueError:
                raise DataError(f"{path}: {key} = {value!r} is not a number") from None
    label = _pop_alias(raw, "label_column")
    if label is not None:
        if label.startswith("name:"):
            layer["target"] = label[5:]
        else:
            layer["label_column"] = int(label)
    objective = _pop_alias(raw, "objective")
    if objective:
        layer["task"] = _TASK_OF_OBJECTIVE.get(objective, "regression")
        if objective not in ("binary", "multiclass", "lambdarank", "regression"):
            raw["objective"] = objective  # a specific loss (huber, xentropy, ...): keep it
    for key in _CLI_ONLY:
        raw.pop(key, None)
    layer["params"] = [f"{k}={v}" for k, v in raw.items()]
    return layer


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["num_leaves=63", "metric=auc,binary_logloss"]`` -> typed LightGBM parameters."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise DataError(f"--param {pair!r}: expected key=value")
        key, value = (part.strip() for part in pair.split("=", 1))
        if not key:
            raise DataError(f"--param {pair!r}: empty key")
        out[key] = parse_value(value)
    return out


DEFAULT_METRICS = {
    "binary": ["binary_logloss", "auc"],
    "multiclass": ["multi_logloss", "multi_error"],
    "regression": ["l2", "l1"],
    "lambdarank": ["ndcg"],
}


def lightgbm_params(cfg: BoostConfig, task: str, num_class: int, threads: int) -> dict[str, Any]:
    """The parameter dict for ``lightgbm.train``; ``--param`` pairs win over everything else."""
    params: dict[str, Any] = {
        "objective": task,
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "num_threads": threads,
        "verbose": -1,
    }
    if task == "multiclass":
        params["num_class"] = num_class
    if cfg.lightgbm_config is None:  # our defaults; a train.conf says exactly what it wants
        params["metric"] = DEFAULT_METRICS[task]
        params["first_metric_only"] = True
        if task == "lambdarank":
            params["eval_at"] = [5]  # LightGBM sorts cutoffs and stops on the first: NDCG@1 is too noisy
    if cfg.seed is not None:
        params["seed"] = cfg.seed
    if cfg.deterministic:
        # Column-wise histograms give each feature to one thread, so sums do not depend on the thread count.
        params.update(deterministic=True, force_col_wise=True, force_row_wise=False)
    params.update(parse_params(cfg.params))
    return params
