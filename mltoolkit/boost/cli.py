"""`mltk boost`: Gradient boosting on tables with LightGBM: classification, regression, ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options

app = typer.Typer(
    help="Gradient boosting on tables with LightGBM: classification, regression, ranking.", no_args_is_help=True
)

IdColumns = Annotated[
    list[str] | None, typer.Option("--id", help="Id column(s) passed through to predict output (repeat or COL1,COL2).")
]
DropColumns = Annotated[list[str] | None, typer.Option("--drop", help="Column(s) not to use as features.")]
DaskCluster = Annotated[
    str | None,
    typer.Option(
        "--dask",
        help="Run on a Dask cluster: a scheduler address (tcp://host:8786) or local[:N[:MEMORY]] (N worker processes "
        "here); DATA is then a glob or folder of CSV/Parquet parts. Needs mltk[dask].",
    ),
]
CategoricalColumns = Annotated[
    list[str] | None,
    typer.Option("--categorical", help="Treat these columns as categorical (text columns always are)."),
]


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _check_device(device: str | None) -> None:
    from mltoolkit.core.errors import DataError, ResourceError

    spec = (device or "auto").lower()
    if spec.startswith("cuda") or spec == "mps":
        raise ResourceError(f"--device {spec}: this LightGBM build trains on the CPU only; use --device cpu or auto")
    if spec not in ("auto", "cpu"):
        raise DataError(f"unknown device {spec!r}; expected auto or cpu")


@app.command("train")
def train_command(
    data: Annotated[
        str | None,
        typer.Argument(help="Training table: CSV/TSV/Parquet/JSONL, LightGBM TSV or LibSVM, or - for stdin."),
    ] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="The column to predict.")] = None,
    label_column: Annotated[
        int | None,
        typer.Option("--label-column", help="The target by position (headerless files). \\[default: 0 there]"),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help="auto, binary, multiclass, regression or lambdarank. \\[default: auto, from the target]"),
    ] = None,
    weight: Annotated[str | None, typer.Option(help="Column of row weights (or a DATA.weight side file).")] = None,
    group: Annotated[
        str | None, typer.Option(help="Column of query ids for ranking (or a DATA.query side file).")
    ] = None,
    id: IdColumns = None,
    drop: DropColumns = None,
    categorical: CategoricalColumns = None,
    valid: Annotated[str | None, typer.Option(help="Validation table for early stopping (instead of a split).")] = None,
    valid_fraction: Annotated[
        float | None, typer.Option(help="Hold out this fraction of DATA for early stopping. \\[default: 0.2]")
    ] = None,
    num_rounds: Annotated[int | None, typer.Option(help="Most boosting rounds. \\[default: 1000]")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Shrinkage per round. \\[default: 0.05]")] = None,
    num_leaves: Annotated[int | None, typer.Option(help="Leaves per tree. \\[default: 31]")] = None,
    early_stopping: Annotated[
        int | None, typer.Option(help="Stop after this many rounds without improvement; 0 = off. \\[default: 50]")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Any LightGBM parameter as key=value (repeatable).")
    ] = None,
    cv: Annotated[int | None, typer.Option(help="Print K-fold cross-validated metrics before the final fit.")] = None,
    tune: Annotated[
        bool | None,
        typer.Option(
            "--tune/--no-tune", help="Search tree size and regularisation by 3-fold CV on the training rows first."
        ),
    ] = None,
    tune_trials: Annotated[int | None, typer.Option(help="Candidates --tune tries. \\[default: 12]")] = None,
    refit: Annotated[
        bool | None,
        typer.Option(
            "--refit/--no-refit",
            help="Refit on all rows for the (scaled) best round count found on the split or by CV. \\[default: on]",
        ),
    ] = None,
    init_score: Annotated[
        bool | None, typer.Option("--init-score/--no-init-score", help="Use DATA.init side files. \\[default: on]")
    ] = None,
    lightgbm_config: Annotated[
        Path | None,
        typer.Option(
            help="A LightGBM CLI config (train.conf): its data, valid_data and parameters, as LightGBM would."
        ),
    ] = None,
    dask: DaskCluster = None,
    config: options.ConfigFile = None,
    device: options.Device = None,
    seed: Annotated[int | None, typer.Option(help="Seed for LightGBM. \\[default: LightGBM's own seeds]")] = None,
    threads: options.Threads = None,
    deterministic: options.Deterministic = False,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue a run interrupted with Ctrl-C (directory, boost/<name> or latest)."),
    ] = None,
    quiet: options.Quiet = False,
) -> None:
    """Train a LightGBM model on a table; write model.txt, schema, metrics and importance to a run."""
    from mltoolkit.boost.params import BoostConfig, config_from_lightgbm
    from mltoolkit.boost.training import train
    from mltoolkit.core.config import build_config, load_config_file
    from mltoolkit.core.console import emit_json, set_quiet

    set_quiet(quiet)
    _check_device(device)
    file_layer = load_config_file(config) if config else None
    run_layer = _run_config(resume, runs_dir) if resume else None
    conf_path = lightgbm_config or (file_layer or {}).get("lightgbm_config")
    conf_layer = config_from_lightgbm(conf_path) if conf_path else None
    flags = {
        "data": data,
        "target": target,
        "label_column": label_column,
        "task": task,
        "weight": weight,
        "group": group,
        "id": _split(id),
        "drop": _split(drop),
        "categorical": _split(categorical),
        "valid": valid,
        "valid_fraction": valid_fraction,
        "num_rounds": num_rounds,
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "early_stopping": early_stopping,
        "cv": cv,
        "tune": tune,
        "tune_trials": tune_trials,
        "refit": refit,
        "init_score": init_score,
        "seed": seed,
        "threads": threads,
        "deterministic": deterministic or None,
        "dask": dask,
    }
    cfg = build_config(BoostConfig, run_layer, conf_layer, file_layer, flags)
    if param:  # --param adds to (and overrides) the parameters of a config file
        cfg.params = [*cfg.params, *param]
    emit_json(train(cfg, runs_dir=runs_dir, name=name, resume=resume))


def _run_config(resume: str, runs_dir: Path) -> dict:
    """An interrupted run's own config.json: what it was started with (flags typed now override it)."""
    from mltoolkit.core.io import read_json
    from mltoolkit.core.runs import resolve_run_dir

    return read_json(resolve_run_dir(resume, runs_dir, "boost") / "config.json")


@app.command("evaluate")
def evaluate_command(
    run: options.RunRef,
    data: Annotated[str, typer.Argument(help="A labelled table in any format train reads, or - for stdin.")],
    runs_dir: options.RunsDir = Path("runs"),
    threads: options.Threads = None,
    fmt: options.ResultFormat = "auto",
    quiet: options.Quiet = False,
) -> None:
    """Metrics of a trained run on labelled data (also written to the run's eval.json)."""
    from mltoolkit.boost.score import evaluate
    from mltoolkit.core.console import print_result, set_quiet

    set_quiet(quiet)
    print_result(evaluate(run, data, runs_dir=runs_dir, threads=threads), fmt, title="boost evaluation")


@app.command("predict")
def predict_command(
    run: options.RunRef,
    data: Annotated[str, typer.Argument(help="Table to score (any format train reads), or - for stdin.")] = "-",
    proba: Annotated[bool, typer.Option("--proba", help="Add a probability column per class.")] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add per-feature contributions (SHAP values, raw-score scale).")
    ] = False,
    output: options.Output = None,
    fmt: options.RecordFormat = "csv",
    runs_dir: options.RunsDir = Path("runs"),
    threads: options.Threads = None,
    dask: DaskCluster = None,
    quiet: options.Quiet = False,
) -> None:
    """Score a table in chunks: id columns, prediction (class label or value), optional probabilities.

    With --dask, each part of DATA is scored on a worker: --output names a folder that gets one file per part,
    without it the parts go to stdout in input order."""
    from mltoolkit.boost.score import predict
    from mltoolkit.core.console import set_quiet

    set_quiet(quiet)
    if dask:
        from mltoolkit.boost.distributed import predict_on_cluster

        predict_on_cluster(run, data, dask, output=output, fmt=fmt, proba=proba, explain=explain, runs_dir=runs_dir)
        return
    predict(run, data, output=output, fmt=fmt, proba=proba, explain=explain, runs_dir=runs_dir, threads=threads)
