"""What ``predict`` reads: the run's served model, user id lists and new users' histories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mltoolkit.core.errors import DataError
from mltoolkit.core.io import STDIO, iter_lines, source_name
from mltoolkit.core.runs import resolve_run_dir
from mltoolkit.recommend.data import COLUMN_NAMES, numeric_column, read_frame
from mltoolkit.recommend.models import limit_blas, thread_count
from mltoolkit.recommend.store import Bundle, load_bundle, read_run_config
from mltoolkit.recommend.training import column_spec
from mltoolkit.techniques import RECOMMEND

NEW_USER = "new"  # the user column of a --history ITEM,ITEM prediction


def load_served(ref: str, runs_dir: Path, threads: int | None) -> tuple[Bundle, dict[str, Any]]:
    run_dir = resolve_run_dir(ref, runs_dir, RECOMMEND.name)
    config = read_run_config(run_dir)
    count = thread_count(threads if threads is not None else config.get("threads"))
    limit_blas(config["model"], count)
    return load_bundle(run_dir, config, count), config


def read_user_ids(source: str) -> Iterator[str]:
    """User ids one a line (a first line naming the user column is skipped), lazily."""
    try:
        for number, line in iter_lines(source):
            value = line.split(",")[0].split("\t")[0].strip()
            if number == 1 and value.lower() in COLUMN_NAMES["user"]:
                continue
            yield value
    except UnicodeDecodeError:
        raise DataError(f"{source_name(source)}: not UTF-8 text; expected user ids, one a line") from None


def read_histories(spec: str, config: dict[str, Any]) -> list[tuple[str, list[str], list[float]]]:
    """``ITEM,ITEM,...`` (one new user, every item rated 1) or a user,item[,rating] table."""
    if spec != STDIO and not Path(spec).is_file():
        items = [v.strip() for v in spec.split(",") if v.strip()]
        if not items:
            raise DataError("--history is empty; give ITEM,ITEM,... or a table of user,item[,rating]")
        return [(NEW_USER, items, [1.0] * len(items))]
    frame, cols, first_line = read_frame(spec, column_spec({**config, "columns": None}))
    ratings = [1.0] * len(frame)
    if cols["rating"] is not None:
        ratings = list(numeric_column(frame, cols["rating"], source_name(spec), first_line))
    histories: dict[str, tuple[list[str], list[float]]] = {}
    for user, item, rating in zip(frame[cols["user"]].astype(str), frame[cols["item"]].astype(str), ratings):
        items, values = histories.setdefault(user, ([], []))
        items.append(item)
        values.append(float(rating))
    return [(user, items, values) for user, (items, values) in histories.items()]
