"""`mltk boost`: Gradient boosting on tables with LightGBM: classification, regression, ranking."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.boost.params import BoostConfig
from mltoolkit.core import options
from mltoolkit.core.errors import UsageError
from mltoolkit.core.params import config_options, spec_of
from mltoolkit.techniques import BOOST

app = typer.Typer(
    help="Gradient boosting on tables with LightGBM: classification, regression, ranking.", no_args_is_help=True
)


_FIELDS = {f.name: f for f in dataclasses.fields(BoostConfig)}
Names = list[str] | None
Backend = options.backend_option(BOOST.backends)


def _option(field: str, *names: str) -> typer.models.OptionInfo:
    """An option declared here for a field (a repeatable list, or predict's --dask), its help from the field."""
    spec = spec_of(_FIELDS[field])
    return typer.Option(*names, help=spec.help.replace("[", "\\["), rich_help_panel=spec.panel)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


# What train prints: the run and how it was validated (summary.json holds these and more).
PRINTED = ("task", "cv", "tuned_params", "validation", "best_round", "valid", "wall_time_s")


@app.command("train")
@config_options(BoostConfig)
def train_command(
    flags: dict,
    data: Annotated[
        str | None,
        typer.Argument(help="Training table: CSV/TSV/Parquet/JSONL, LightGBM TSV or LibSVM, or - for stdin."),
    ] = None,
    id: Annotated[Names, _option("id", "--id")] = None,
    drop: Annotated[Names, _option("drop", "--drop")] = None,
    categorical: Annotated[Names, _option("categorical", "--categorical")] = None,
    params: Annotated[Names, _option("params", "--param", "-p")] = None,
    config: options.ConfigFile = None,
    device: options.Device = None,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue a run interrupted with Ctrl-C (directory, boost/<name> or latest)."),
    ] = None,
    quiet: options.Quiet = False,
) -> None:
    """Train a LightGBM model on a table; write model.txt, schema, metrics and importance to a run."""
    from mltoolkit.boost.booster import check_device
    from mltoolkit.boost.params import config_from_lightgbm
    from mltoolkit.boost.training import train
    from mltoolkit.core.config import resolve_config
    from mltoolkit.core.console import emit_json, set_quiet
    from mltoolkit.core.runs import resumed_config

    set_quiet(quiet)
    check_device(device)
    flags = {**flags, "data": data, "id": _split(id), "drop": _split(drop), "categorical": _split(categorical)}
    saved = resumed_config(resume, runs_dir, BOOST.name)
    cfg = resolve_config(BoostConfig, flags, config_file=config, resumed=saved)
    if cfg.lightgbm_config and saved is None:  # the train.conf sits under --config and the typed flags
        conf = config_from_lightgbm(cfg.lightgbm_config)
        cfg = resolve_config(BoostConfig, flags, config_file=config, base=conf)
    if params:  # --param adds to (and overrides) the parameters of a config file or a train.conf
        cfg.params = [*cfg.params, *params]
    result = train(cfg, runs_dir=runs_dir, name=name, resume=resume)
    emit_json({"run_dir": str(result.run_dir), **{k: result.summary[k] for k in PRINTED if k in result.summary}})


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
    dask: Annotated[str | None, _option("dask", "--dask")] = None,
    backend: Backend = BOOST.backends[0],
    quiet: options.Quiet = False,
) -> None:
    """Score a table in chunks: id columns, prediction (class label or value), optional probabilities.

    With --dask, each part of DATA is scored on a worker: --output names a folder that gets one file per part,
    without it the parts go to stdout in input order."""
    from mltoolkit.boost.score import load, write_predictions
    from mltoolkit.core.console import set_quiet

    set_quiet(quiet)
    if dask:
        if backend != BOOST.backends[0]:
            raise UsageError("--backend onnxruntime scores in this process; it cannot be combined with --dask")
        from mltoolkit.boost.distributed import predict_on_cluster

        predict_on_cluster(run, data, dask, output=output, fmt=fmt, proba=proba, explain=explain, runs_dir=runs_dir)
        return
    predictor = load(run, runs_dir=runs_dir, threads=threads, backend=backend)
    write_predictions(predictor, data, output=output, fmt=fmt, proba=proba, explain=explain)
