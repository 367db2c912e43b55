"""One console for humans on stderr, results for programs on stdout.

Progress bars are drawn only on an interactive stderr, never with ``--quiet``, and without
animation when ``NO_COLOR`` is set or ``TERM=dumb``. Results go to stdout: a table on a TTY,
otherwise (or with ``--format json``) one JSON document, so commands compose in pipelines.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

_state = {"quiet": False}
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet


def info(message: str) -> None:
    """A progress or status line for humans (suppressed by --quiet)."""
    if not _state["quiet"]:
        err_console.print(message, markup=False)


def warn(message: str) -> None:
    """A warning: always shown, even with --quiet, because it changes what the result means."""
    err_console.print(f"warning: {message}", markup=False, style="yellow")


def _animated() -> bool:
    if _state["quiet"] or not sys.stderr.isatty():
        return False
    return os.environ.get("TERM") != "dumb"


class _Progress:
    """The handle ``progress()`` yields: ``advance(n, **fields)`` moves the bar, fields show beside it."""

    def __init__(self, bar: Any, task: Any) -> None:
        self._bar, self._task = bar, task

    def advance(self, n: float = 1, **fields: Any) -> None:
        """Move by ``n``; ``fields`` replace the numbers shown, and without any the last ones stay."""
        if self._bar is not None:
            self._bar.update(self._task, advance=n, **_stats(fields))

    def update(self, completed: float | None = None, **fields: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, **_stats(fields))


def _stats(fields: Mapping[str, Any]) -> dict[str, str]:
    return {"stats": _format_fields(fields)} if fields else {}


def _format_fields(fields: Mapping[str, Any]) -> str:
    return "  ".join(f"{k} {_short(v)}" for k, v in fields.items() if v is not None)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@contextmanager
def progress(total: float | None, description: str) -> Iterator[_Progress]:
    """A progress bar on stderr when a human is watching; a silent no-op otherwise."""
    if not _animated():
        yield _Progress(None, None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        console=err_console,
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=total, stats="")
        yield _Progress(bar, task)


def to_jsonable(value: Any) -> Any:
    """Numpy scalars and arrays, paths and NaN made JSON-safe (NaN and inf become null)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array, torch tensor
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def emit_json(obj: Any) -> None:
    """One JSON document on one line of stdout: what scripts parse."""
    sys.stdout.write(json.dumps(to_jsonable(obj)) + "\n")
    sys.stdout.flush()


def wants_json(fmt: str) -> bool:
    """Whether ``--format fmt`` means JSON: asked for, or ``auto`` with stdout not a terminal.
    Commands that print several tables ask once, so that JSON is one document of the whole result."""
    if fmt not in ("auto", "table", "json"):
        from mltoolkit.core.errors import UsageError

        raise UsageError(f"unknown --format {fmt!r}; expected auto, table or json")
    return fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())


def print_result(
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]], fmt: str = "auto", title: str | None = None
) -> None:
    """Print a result: a rich table on a TTY (``auto``) or with ``table``, else JSON.

    A mapping prints as metric/value rows; a sequence of mappings as one row each.
    """
    if wants_json(fmt):
        emit_json(data)
        return
    table = Table(title=title)
    if isinstance(data, Mapping):
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in data.items():
            table.add_row(str(key), _cell(value))
    else:
        columns = list(dict.fromkeys(k for row in data for k in row))
        for column in columns:
            table.add_column(str(column))
        for row in data:
            table.add_row(*(_cell(row.get(c)) for c in columns))
    Console(highlight=False).print(table)


def print_confusion(labels: Sequence[str], matrix: Sequence[Sequence[Any]], fmt: str, title: str) -> None:
    """A confusion matrix as a table: one row per true class, one column per predicted class."""
    rows = [{"true \\ predicted": label, **dict(zip(labels, row))} for label, row in zip(labels, matrix)]
    print_result(rows, fmt, title=title)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(to_jsonable(value))
    return "" if value is None else str(value)
