"""LightGBM parameters: the config, LightGBM CLI ``train.conf`` files and ``--param key=value`` mapped faithfully."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from mltoolkit.boost.data import parse_value, read_lightgbm_config
from mltoolkit.core.errors import DataError
from mltoolkit.core.params import RunOptions, param
from mltoolkit.core.params import check_config as check_ranges

Task = Literal["auto", "binary", "multiclass", "regression", "lambdarank"]
_COLUMNS = "Columns"
_FIT = "Boosting"
_CHECK = "Validation and tuning"
_CLUSTER = "More than one machine"


@dataclass
class BoostConfig(RunOptions):
    """Everything ``mltk boost train`` needs; written whole to config.json.

    Each field carries its help text and range: ``train``'s options come from them (the repeatable
    column lists and ``--param`` are declared in cli.py from the same fields' help).
    """

    data: str | None = param(None, "Training table, or - for stdin.", path=True, cli=False)
    target: str | None = param(None, "The column to predict.", short="-t", panel=_COLUMNS)
    label_column: int | None = param(
        None, "The target by position (headerless files).", ge=0, default_text="0 there", panel=_COLUMNS
    )
    task: Task = param("auto", "The learning task; auto chooses from the target (and --group).", panel=_COLUMNS)
    weight: str | None = param(None, "Column of row weights (or a DATA.weight side file).", panel=_COLUMNS)
    group: str | None = param(None, "Column of query ids for ranking (or a DATA.query side file).", panel=_COLUMNS)
    id: list[str] = param(
        [], "Id column(s) passed through to predict output (repeat or COL1,COL2).", cli=False, panel=_COLUMNS
    )
    drop: list[str] = param([], "Column(s) not to use as features (repeat or COL1,COL2).", cli=False, panel=_COLUMNS)
    categorical: list[str] = param(
        [],
        "Treat these columns as categorical; text columns always are (repeat or COL1,COL2).",
        cli=False,
        panel=_COLUMNS,
    )
    valid: str | None = param(
        None, "Validation table for early stopping (instead of a split).", path=True, panel=_CHECK
    )
    valid_fraction: float = param(
        0.2, "Hold out this fraction of DATA for early stopping; 0 = none.", ge=0, lt=1, panel=_CHECK
    )
    num_rounds: int = param(1000, "Most boosting rounds.", ge=1, panel=_FIT)
    learning_rate: float = param(0.05, "Shrinkage per round.", gt=0, panel=_FIT)
    num_leaves: int = param(31, "Leaves per tree.", ge=2, le=131072, panel=_FIT)
    early_stopping: int = param(50, "Stop after this many rounds without improvement; 0 = off.", ge=0, panel=_FIT)
    params: list[str] = param([], "Any LightGBM parameter as key=value (repeatable).", cli=False, panel=_FIT)
    cv: int = param(
        0, "Print K-fold cross-validated metrics before the final fit; 0 = off, else K >= 2.", ge=0, panel=_CHECK
    )
    tune: bool = param(
        False, "Search tree size and regularisation by 3-fold CV on the training rows first.", panel=_CHECK
    )
    tune_trials: int = param(12, "Candidates --tune tries.", ge=1, panel=_CHECK)
    refit: bool = param(
        True, "Refit on all rows for the (scaled) best round count found on the split or by CV.", panel=_CHECK
    )
    init_score: bool = param(True, "Use DATA.init side files.", panel=_COLUMNS)
    seed: int | None = param(
        None, "Seed for LightGBM and the split.", ge=0, default_text="LightGBM's own seeds, split 0", panel=_FIT
    )
    threads: int = param(0, "CPU threads to use; 0 means every core this process may use.", ge=0, panel=_FIT)
    deterministic: bool = param(False, "Bit-identical models whatever the thread count (slower).", panel=_FIT)
    lightgbm_config: str | None = param(
        None,
        "A LightGBM CLI config (train.conf): its data, valid_data and parameters, as LightGBM would.",
        path=True,
        panel=_FIT,
    )
    dask: str | None = param(
        None,
        "Run on a Dask cluster: a scheduler address (tcp://host:8786) or local[:N[:MEMORY]] (N worker processes "
        "here); DATA is then a glob or folder of CSV/Parquet parts. Needs mltk[dask].",
        panel=_CLUSTER,
    )


def check_config(cfg: BoostConfig) -> None:
    """Refuse what no run could use, before anything is read: each field's range, then what a range cannot say."""
    check_ranges(cfg)
    if cfg.cv == 1:
        raise DataError("--cv must be 0 (off) or at least 2 folds (got 1)")
    parse_params(cfg.params)  # a malformed pair or an unknown LightGBM parameter


# LightGBM CLI keys (each with its aliases) that say where files are or how the CLI runs, not how to train.
_CLI_ONLY = ("task", "output_model", "output_result", "input_model", "num_machines", "local_listen_port",
             "machine_list_filename", "save_binary", "two_round", "metric_freq", "is_provide_training_metric",
             "tree_learner", "is_enable_sparse", "config")  # fmt: skip
# Our options and the LightGBM parameter each stands for (a train.conf may use any alias of it).
_OPTION_OF = {"data": "data", "valid": "valid", "num_rounds": "num_iterations", "learning_rate": "learning_rate",
              "num_leaves": "num_leaves", "early_stopping": "early_stopping_round"}  # fmt: skip
_TASK_OF_OBJECTIVE = {"binary": "binary", "multiclass": "multiclass", "multiclassova": "multiclass",
                      "multiclass_ova": "multiclass", "ova": "multiclass", "ovr": "multiclass",
                      "lambdarank": "lambdarank", "rank_xendcg": "lambdarank", "xendcg": "lambdarank"}  # fmt: skip


@cache
def _lightgbm_aliases() -> dict[str, list[str]]:
    """Every LightGBM parameter and its aliases (main name first), as the library lists them.

    ``lightgbm.basic._ConfigAliases`` is how LightGBM's own Python package reads its C API's
    ``LGBM_DumpParamAliases``; a hand-kept list would fall behind the installed version.
    """
    from mltoolkit.boost.booster import lightgbm

    return lightgbm().basic._ConfigAliases._get_all_param_aliases()


def aliases(name: str) -> list[str]:
    """A LightGBM parameter's names, main name first: ``aliases("objective")`` -> objective, app, loss..."""
    return _lightgbm_aliases()[name]


def _pop_alias(params: dict[str, str], name: str) -> str | None:
    """Remove every alias of ``name`` from ``params``; the value LightGBM would use (main name first)."""
    found = [params.pop(alias) for alias in aliases(name) if alias in params]
    return found[0] if found else None


def check_param_names(names: Iterable[str], source: str) -> None:
    """Refuse a key that is no LightGBM parameter: LightGBM would warn (unseen with verbose=-1) and ignore it."""
    known = {alias for group in _lightgbm_aliases().values() for alias in group}
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise DataError(f"{source}: {name!r} is not a LightGBM parameter{hint}")


def config_from_lightgbm(path: str | Path) -> dict[str, Any]:
    """A config layer from a LightGBM CLI config file; paths in it are relative to the file."""
    path = Path(path)
    raw = read_lightgbm_config(path)
    check_param_names(raw, str(path))
    layer: dict[str, Any] = {"lightgbm_config": str(path), "valid_fraction": 0.0, "early_stopping": 0,
                             "num_rounds": 100, "learning_rate": 0.1, "num_leaves": 31, "refit": False}  # fmt: skip
    for key in ("data", "valid"):
        value = _pop_alias(raw, _OPTION_OF[key])
        if value:
            first = value.split(",")[0].strip()
            layer[key] = str(path.parent / first) if not Path(first).is_absolute() else first
    for key, kind in (("num_rounds", int), ("learning_rate", float), ("num_leaves", int), ("early_stopping", int)):
        value = _pop_alias(raw, _OPTION_OF[key])
        if value is not None:
            layer[key] = _number(kind, value, f"{path}: {key}")
    label = _pop_alias(raw, "label_column")
    if label is not None:
        if label.startswith("name:"):
            layer["target"] = label[5:]
        else:
            layer["label_column"] = _number(int, label, f"{path}: label_column")
    objective = _pop_alias(raw, "objective")
    if objective:
        layer["task"] = _TASK_OF_OBJECTIVE.get(objective, "regression")
        if objective not in ("binary", "multiclass", "lambdarank", "regression"):
            raw["objective"] = objective  # a specific loss (huber, xentropy, ...): keep it
    layer["params"] = [f"{k}={v}" for k, v in raw.items() if not is_cli_only(k)]
    return layer


def is_cli_only(key: str) -> bool:
    """A train.conf key that says where files are or how LightGBM's CLI runs, not how to train."""
    return any(key in aliases(name) for name in _CLI_ONLY)


def _number(kind: type, text: str, where: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise DataError(f"{where} = {text!r} is not {'an integer' if kind is int else 'a number'}") from None


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
    check_param_names(out, "--param")
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
