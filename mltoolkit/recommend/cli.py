"""`mltk recommend`: collaborative filtering on user,item,rating data with implicit.

Thin Typer layer over mltoolkit.recommend.training / evaluation / prediction; nothing heavy is
imported until a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options
from mltoolkit.core.params import config_options
from mltoolkit.recommend.config import RecommendConfig, split_list
from mltoolkit.techniques import RECOMMEND

app = typer.Typer(
    help="Collaborative filtering on user,item,rating data with implicit: fit (train), evaluate, predict.",
    no_args_is_help=True,
)

Data = Annotated[
    str | None,
    typer.Argument(
        metavar="DATA",
        help="Ratings table: CSV, TSV, Parquet or JSON lines, or - for stdin. \\[default with --resume: the run's]",
        show_default=False,
    ),
]


@app.command("train")
@config_options(RecommendConfig)
def train_command(
    flags: dict,
    data: Data = None,
    config: options.ConfigFile = None,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: options.Resume = None,
    quiet: options.Quiet = False,
) -> None:
    """Fit a recommender: hold out a test split, fit, evaluate, refit on everything, save the run."""
    from mltoolkit.core.config import resolve_config
    from mltoolkit.core.console import emit_json, set_quiet
    from mltoolkit.core.errors import UsageError
    from mltoolkit.core.runs import resumed_config
    from mltoolkit.recommend.training import train

    set_quiet(quiet)
    saved = resumed_config(resume, runs_dir, RECOMMEND.name)
    cfg = resolve_config(RecommendConfig, {**flags, "data": data}, config_file=config, resumed=saved)
    if cfg.data is None:
        raise UsageError("no data: pass DATA, a ratings table (or - for stdin)")
    result = train(cfg, runs_dir=runs_dir, name=name, resume=resume)
    emit_json({k: result.summary[k] for k in ("run_dir", "model", "headline", "final", "wall_time_s")})


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
    from mltoolkit.recommend.evaluation import evaluate, table_rows

    set_quiet(quiet)
    result = evaluate(run, data, runs_dir=runs_dir, k=k, threads=threads)
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
    from mltoolkit.core.io import RecordWriter, chunks
    from mltoolkit.recommend.prediction import BATCH, load
    from mltoolkit.recommend.serving import read_histories, read_user_ids

    set_quiet(quiet)
    if n < 1:
        raise UsageError(f"-n must be at least 1 (got {n})")
    given = [x for x in (users_file, users, history, similar_to) if x is not None]
    if len(given) > 1:
        raise UsageError("give one of USERS_FILE, --users, --history or --similar-to")
    predictor = load(run, runs_dir=runs_dir, threads=threads)
    if similar_to is not None:
        batches = [predictor.similar(split_list(similar_to), n, strict=strict)]
    else:
        if history is not None:
            inputs = iter(read_histories(history, predictor.config))
        elif users is not None:
            inputs = iter(split_list(users))
        else:
            inputs = read_user_ids(users_file) if users_file is not None else map(str, predictor.bundle.users)
        options = {"n": n, "include_seen": include_seen, "strict": strict, "explain": explain}
        batches = (predictor.predict(chunk, **options) for chunk in chunks(inputs, BATCH))
    with RecordWriter(output, fmt) as writer:
        for records in batches:
            if explain and fmt == "csv":  # one readable cell: "50;181;172" rather than a JSON list in quotes
                records = [{**r, "because": ";".join(r["because"])} for r in records]
            writer.write_all(records)
