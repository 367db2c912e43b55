"""`mltk recommend`: collaborative filtering on user,item,rating data with implicit.

Thin Typer layer over mltoolkit.recommend.training / evaluation / prediction; nothing heavy is
imported until a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options

app = typer.Typer(
    help="Collaborative filtering on user,item,rating data with implicit: fit (train), evaluate, predict.",
    no_args_is_help=True,
)

Data = Annotated[str, typer.Argument(help="Ratings table: CSV, TSV, Parquet or JSON lines, or - for stdin.")]
_MODEL_HELP = "als, bpr, cosine, bm25, tfidf (implicit's item-item kNN), ease or popularity. \\[default: als]"


def _split_list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@app.command("train")
def train_command(
    data: Data,
    model: Annotated[str | None, typer.Option("--model", "-m", help=_MODEL_HELP)] = None,
    factors: Annotated[int | None, typer.Option(help="Latent factors (als, bpr). \\[default: als 32, bpr 64]")] = None,
    regularization: Annotated[
        float | None, typer.Option(help="L2 regularization (als, bpr). \\[default: als 30, bpr 0.01]")
    ] = None,
    iterations: Annotated[
        int | None, typer.Option(help="Passes over the data (als, bpr). \\[default: 15, 100]")
    ] = None,
    learning_rate: Annotated[float | None, typer.Option(help="SGD learning rate (bpr). \\[default: 0.01]")] = None,
    neighbours: Annotated[int | None, typer.Option(help="Neighbours kept per item (kNN). \\[default: 20]")] = None,
    bm25_k1: Annotated[float | None, typer.Option(help="BM25 K1 (bm25). \\[default: 1.2]")] = None,
    bm25_b: Annotated[float | None, typer.Option(help="BM25 B (bm25). \\[default: 0.75]")] = None,
    ease_lambda: Annotated[
        float | None, typer.Option(help="L2 weight of EASE's solve (ease). \\[default: 500]")
    ] = None,
    confidence: Annotated[
        str | None,
        typer.Option(
            help="Rating -> confidence: linear (1 + alpha*r), log (1 + alpha*log1p(r)), binary (1 + alpha). "
            "[default: linear]"
        ),
    ] = None,  # fmt: skip
    alpha: Annotated[float | None, typer.Option(help="Confidence scale. \\[default: 1.0]")] = None,
    min_rating: Annotated[float | None, typer.Option(help="Drop ratings below this before anything else.")] = None,
    duplicates: Annotated[
        str | None, typer.Option(help="Repeated (user, item) pairs: sum or last (latest time). \\[default: sum]")
    ] = None,
    user_col: Annotated[str | None, typer.Option(help="User column. \\[default: user, user_id, userId...]")] = None,
    item_col: Annotated[str | None, typer.Option(help="Item column. \\[default: item, item_id, movieId...]")] = None,
    rating_col: Annotated[str | None, typer.Option(help="Rating column (none found: every row is 1).")] = None,
    time_col: Annotated[str | None, typer.Option(help="Timestamp column (for --split temporal).")] = None,
    columns: Annotated[
        str | None, typer.Option(help="Names for a headerless file, e.g. user,item,rating,timestamp.")
    ] = None,
    test_fraction: Annotated[
        float | None, typer.Option(help="Share of interactions held out for testing; 0 = none. \\[default: 0.2]")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="random (per interaction) or temporal (each user's latest). \\[default: random]")
    ] = None,
    refit: Annotated[
        bool | None, typer.Option("--refit/--no-refit", help="Refit on all data for serving. \\[default: refit]")
    ] = None,
    tune: Annotated[
        bool | None, typer.Option("--tune/--no-tune", help="Search hyperparameters on a validation split of train.")
    ] = None,
    tune_trials: Annotated[int | None, typer.Option(help="Most trials --tune runs. \\[default: 40]")] = None,
    tune_time: Annotated[float | None, typer.Option(help="Most seconds --tune searches. \\[default: 240]")] = None,
    k: Annotated[int | None, typer.Option("-k", help="Cut-off of the ranking metrics. \\[default: 10]")] = None,
    config: options.ConfigFile = None,
    device: options.Device = None,
    seed: options.Seed = None,
    threads: options.Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: options.Resume = None,
    quiet: options.Quiet = False,
) -> None:
    """Fit a recommender: hold out a test split, fit, evaluate, refit on everything, save the run."""
    from mltoolkit.core.config import build_config, load_config_file
    from mltoolkit.core.console import emit_json, set_quiet
    from mltoolkit.recommend.config import RecommendConfig
    from mltoolkit.recommend.training import train

    set_quiet(quiet)
    flags = {
        "model": model, "factors": factors, "regularization": regularization, "iterations": iterations,
        "learning_rate": learning_rate, "neighbours": neighbours, "bm25_k1": bm25_k1, "bm25_b": bm25_b,
        "ease_lambda": ease_lambda, "confidence": confidence, "alpha": alpha, "min_rating": min_rating,
        "duplicates": duplicates, "user_col": user_col, "item_col": item_col, "rating_col": rating_col,
        "time_col": time_col, "columns": _split_list(columns), "test_fraction": test_fraction, "split": split,
        "refit": refit, "tune": tune, "tune_trials": tune_trials, "tune_time": tune_time, "k": k, "seed": seed,
        "threads": threads, "device": device,
    }  # fmt: skip
    file_layer = load_config_file(config) if config else None
    cfg = build_config(RecommendConfig, file_layer, flags, source="option")
    summary = train(data, cfg, runs_dir=runs_dir, name=name, resume=resume)
    emit_json({k: summary[k] for k in ("run_dir", "model", "headline", "final", "wall_time_s")})


app.command("fit", help="Alias of train: fit a recommender on a ratings table.")(train_command)


@app.command("evaluate")
def evaluate_command(
    run: options.RunRef,
    data: Annotated[
        str | None, typer.Argument(help="Interactions to score on (default: the run's held-out split).")
    ] = None,
    k: Annotated[int | None, typer.Option("-k", help="Cut-off. \\[default: the run's, 10]")] = None,
    threads: options.Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    fmt: options.ResultFormat = "auto",
    quiet: options.Quiet = False,
) -> None:
    """Precision, recall, MAP, NDCG at k, AUC and coverage, beside the popularity baseline."""

    from mltoolkit.core.console import emit_json, print_result, set_quiet, wants_json
    from mltoolkit.core.runs import resolve_run_dir
    from mltoolkit.recommend.evaluation import evaluate, table_rows

    set_quiet(quiet)
    result = evaluate(resolve_run_dir(run, runs_dir, "recommend"), data, k, threads)
    if wants_json(fmt):
        emit_json(result)
    else:
        print_result(table_rows(result), fmt, title=f"{result['model']} on {result['data']} (k={result['k']})")


@app.command("predict")
def predict_command(
    run: options.RunRef,
    users_file: Annotated[
        str | None, typer.Argument(help="File of user ids, one a line, or - for stdin. \\[default: every user]")
    ] = None,
    users: Annotated[str | None, typer.Option("--users", help="Comma-separated user ids.")] = None,
    n: Annotated[int, typer.Option("-n", help="Recommendations per user.")] = 10,
    history: Annotated[
        str | None,
        typer.Option(help="A new user's items, ITEM,ITEM,... or a table of user,item[,rating] (path or -)."),
    ] = None,
    similar_to: Annotated[str | None, typer.Option(help="List items similar to ITEM[,ITEM...] instead.")] = None,
    include_seen: Annotated[bool, typer.Option(help="Keep items the user already rated.")] = False,
    strict: Annotated[
        bool, typer.Option(help="Unknown users or items are an error, not a popularity fallback.")
    ] = False,
    explain: Annotated[bool, typer.Option(help="Add the history items that drove each recommendation.")] = False,
    threads: options.Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    fmt: options.RecordFormat = "csv",
    output: options.Output = None,
    quiet: options.Quiet = False,
) -> None:
    """Top-n items per user as CSV user,rank,item,score (or JSON lines) on stdout."""
    from mltoolkit.core.console import set_quiet
    from mltoolkit.core.errors import UsageError
    from mltoolkit.core.io import RecordWriter
    from mltoolkit.recommend import prediction
    from mltoolkit.recommend.serving import load_served, read_histories, read_user_ids

    set_quiet(quiet)
    if n < 1:
        raise UsageError(f"-n must be at least 1 (got {n})")
    given = [x for x in (users_file, users, history, similar_to) if x is not None]
    if len(given) > 1:
        raise UsageError("give one of USERS_FILE, --users, --history or --similar-to")
    bundle, config = load_served(run, runs_dir, threads)
    if explain and not bundle.model.supports_explain:
        raise UsageError(f"--explain is not supported by {config['model']}; use als, cosine, bm25, tfidf or ease")
    if history is not None and not bundle.model.supports_history:
        raise UsageError(f"--history is not supported by {config['model']}; use als, cosine, bm25, tfidf or ease")
    if similar_to is not None:
        records = prediction.similar_items(bundle, _split_list(similar_to) or [], n, strict)
    elif history is not None:
        records = prediction.recommend_histories(
            bundle, read_histories(history, config), n, confidence_kind=config["confidence"], alpha=config["alpha"],
            include_seen=include_seen, strict=strict, explain=explain,
        )  # fmt: skip
    else:
        ids = _split_list(users) if users is not None else None
        if ids is None:
            ids = read_user_ids(users_file) if users_file is not None else (str(u) for u in bundle.users)
        records = prediction.recommend_users(bundle, ids, n, include_seen=include_seen, strict=strict, explain=explain)
    if explain and fmt == "csv":  # one readable cell: "50;181;172" rather than a JSON list in quotes
        records = ({**r, "because": ";".join(r["because"])} for r in records)
    with RecordWriter(output, fmt) as writer:
        writer.write_all(records)
