"""What ``mltk recommend predict`` reads: user id lists and new users' histories, as ``predict`` records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mltoolkit.core.errors import DataError
from mltoolkit.core.io import STDIO, iter_lines, source_name
from mltoolkit.recommend.config import split_list
from mltoolkit.recommend.data import COLUMN_NAMES, numeric_column, read_frame
from mltoolkit.recommend.prediction import load
from mltoolkit.recommend.store import Bundle
from mltoolkit.recommend.training import column_spec


def load_served(ref: str, runs_dir: Path, threads: int | None) -> tuple[Bundle, dict[str, Any]]:
    """The fitted bundle and config of a run, for ``mltk export`` (until it reads ``load(run)``'s own)."""
    predictor = load(ref, runs_dir=runs_dir, threads=threads)
    return predictor.bundle, predictor.config


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


def read_histories(spec: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """``ITEM,ITEM,...`` (one new user, every item rated 1) or a user,item[,rating] table, as history records."""
    if spec != STDIO and not Path(spec).is_file():
        items = split_list(spec)
        if not items:
            raise DataError("--history is empty; give ITEM,ITEM,... or a table of user,item[,rating]")
        return [{"history": items}]
    frame, cols, first_line = read_frame(spec, column_spec({**config, "columns": None}))
    ratings = [1.0] * len(frame)
    if cols["rating"] is not None:
        ratings = list(numeric_column(frame, cols["rating"], source_name(spec), first_line))
    histories: dict[str, dict[str, Any]] = {}
    for user, item, rating in zip(frame[cols["user"]].astype(str), frame[cols["item"]].astype(str), ratings):
        record = histories.setdefault(user, {"user": user, "history": [], "ratings": []})
        record["history"].append(item)
        record["ratings"].append(float(rating))
    return list(histories.values())
