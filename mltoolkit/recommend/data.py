"""Reading a ratings table into a user x item matrix, with the ids that map rows and columns back.

Ids are factorized in sorted order of their original type (integers numerically, strings
lexically), so MovieLens ids give the same matrix as ``pd.Categorical`` codes: raw implicit and
mltk then see exactly the same matrix, and the same seeded split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mltoolkit.core.console import info
from mltoolkit.core.errors import DataError
from mltoolkit.core.io import read_table, source_name

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse as sp

# Common spellings of each column, looked up case-insensitively when no --*-col is given.
COLUMN_NAMES = {
    "user": ("user", "user_id", "userid", "users", "customer", "customer_id", "visitor", "visitorid"),
    "item": ("item", "item_id", "itemid", "items", "movie", "movieid", "movie_id", "product", "product_id"),
    "rating": ("rating", "ratings", "score", "weight", "count", "value", "plays", "clicks"),
    "time": ("timestamp", "time", "ts", "date", "datetime"),
}
HEADERLESS_ORDER = ("user", "item", "rating", "time")


@dataclass
class Interactions:
    """A ratings matrix (users x items, float32 CSR) with its ids and optional timestamps."""

    ratings: sp.csr_matrix
    users: np.ndarray  # id (as text) of each row
    items: np.ndarray  # id (as text) of each column
    times: sp.csr_matrix | None = None  # same sparsity as ``ratings``; seconds or any sortable number


@dataclass
class ColumnSpec:
    """How to find the columns: explicit names, or names for a headerless file, or sniffing."""

    user_col: str | None = None
    item_col: str | None = None
    rating_col: str | None = None
    time_col: str | None = None
    columns: Sequence[str] | None = None  # names for a headerless file, e.g. user,item,rating,timestamp


def read_frame(source: str, spec: ColumnSpec) -> tuple[pd.DataFrame, dict[str, str | None], int]:
    """Read the table and find its columns; returns ``(frame, {role: column}, first data line)``."""
    import pandas as pd

    frame = read_table(source, columns=list(spec.columns) if spec.columns else None)
    if spec.columns and not isinstance(frame.index, pd.RangeIndex):  # pandas moves surplus fields into the index
        fields = len(frame.columns) + frame.index.nlevels
        raise DataError(
            f"{source_name(source)}: has {fields} columns but --columns names {len(spec.columns)} "
            f"({','.join(spec.columns)})"
        )
    header = 0 if spec.columns or _headerless(frame) else 1
    found = _find_columns(frame, spec, source_name(source))
    return frame, found, header + 1


def _headerless(frame: pd.DataFrame) -> bool:
    return all(str(c).isdigit() for c in frame.columns)


def _find_columns(frame: pd.DataFrame, spec: ColumnSpec, name: str) -> dict[str, str | None]:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if _headerless(frame) and not spec.columns:
        if len(columns) < 2:
            raise DataError(f"{name}: has one column; expected user,item[,rating[,timestamp]]")
        roles = dict(zip(HEADERLESS_ORDER, columns))
        info(f"{name}: no header, columns read as {','.join(list(roles))} (set names with --columns)")
        return {role: roles.get(role) for role in HEADERLESS_ORDER}
    lowered = {c.lower(): c for c in columns}
    explicit = {"user": spec.user_col, "item": spec.item_col, "rating": spec.rating_col, "time": spec.time_col}
    found: dict[str, str | None] = {}
    for role, given in explicit.items():
        if given is not None:
            if given not in columns:
                raise DataError(f"{name}: no column {given!r} (--{role}-col); columns are {', '.join(columns)}")
            found[role] = given
            continue
        found[role] = next((lowered[c] for c in COLUMN_NAMES[role] if c in lowered), None)
        if found[role] is None and role in ("user", "item"):
            raise DataError(
                f"{name}: no {role} column (looked for {', '.join(COLUMN_NAMES[role][:4])}...; columns are "
                f"{', '.join(columns)}); name it with --{role}-col"
            )
    return found


def load_interactions(
    source: str,
    spec: ColumnSpec,
    *,
    duplicates: str = "sum",
    min_rating: float | None = None,
) -> Interactions:
    """Read and validate a ratings table; duplicates are summed or the last one kept."""
    import pandas as pd
    import scipy.sparse as sp

    name = source_name(source)
    frame, cols, first_line = read_frame(source, spec)
    user_col, item_col, rating_col, time_col = cols["user"], cols["item"], cols["rating"], cols["time"]
    for role in ("user", "item"):
        column = frame[cols[role]]
        missing = column.isna().to_numpy()
        if missing.any():
            raise DataError(f"{name} line {first_line + int(missing.argmax())}: empty {role} (column {cols[role]})")
    ratings = numeric_column(frame, rating_col, name, first_line) if rating_col else np.ones(len(frame))
    times = numeric_column(frame, time_col, name, first_line, allow_dates=True) if time_col else None
    keep = np.ones(len(frame), dtype=bool)
    if min_rating is not None:
        keep = ratings >= min_rating
        info(f"{name}: kept {int(keep.sum())} of {len(frame)} ratings >= {min_rating:g}")
    if not keep.any():
        raise DataError(f"{name}: no rating is >= --min-rating {min_rating:g}")
    user_codes, users = pd.factorize(frame[user_col][keep], sort=True)
    item_codes, items = pd.factorize(frame[item_col][keep], sort=True)
    for role, ids in (("user", users), ("item", items)):
        if len(ids) < 2:
            raise DataError(
                f"{name}: only {len(ids)} distinct {role} in column {cols[role]}; collaborative filtering "
                f"needs at least 2 users and 2 items"
            )
    shape = (len(users), len(items))
    values = ratings[keep]
    if duplicates == "last":
        order = np.argsort(times[keep], kind="stable") if times is not None else np.arange(len(values))
        pair = user_codes[order].astype(np.int64) * shape[1] + item_codes[order]
        _, last = np.unique(pair[::-1], return_index=True)
        chosen = order[len(order) - 1 - last]
        user_codes, item_codes, values = user_codes[chosen], item_codes[chosen], values[chosen]
        times_kept = times[keep][chosen] if times is not None else None
    elif duplicates == "sum":
        times_kept = times[keep] if times is not None else None
    else:
        raise DataError(f"unknown duplicates mode {duplicates!r}; expected sum or last")
    matrix = sp.csr_matrix((values.astype(np.float32), (user_codes, item_codes)), shape=shape, dtype=np.float32)
    times_matrix = _latest_times(times_kept, user_codes, item_codes, shape)
    return Interactions(matrix, _as_text(users), _as_text(items), times_matrix)


def _latest_times(
    times: np.ndarray | None, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix | None:
    """Per (user, item), the latest timestamp: what a temporal split orders by."""
    if times is None:
        return None
    import scipy.sparse as sp

    order = np.lexsort((times, cols, rows))  # sorted by pair then time: the last of each pair is the latest
    pair = rows[order].astype(np.int64) * shape[1] + cols[order]
    is_last = np.append(pair[1:] != pair[:-1], True)
    pick = order[is_last]
    return sp.csr_matrix((times[pick].astype(np.float64), (rows[pick], cols[pick])), shape=shape)


def numeric_column(
    frame: pd.DataFrame, column: str, name: str, first_line: int, allow_dates: bool = False
) -> np.ndarray:
    """A column as float64; the first value that is not a finite number is an error naming its line."""
    import pandas as pd

    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    if allow_dates and values.isna().all():
        dates = pd.to_datetime(raw, errors="coerce", utc=True)
        values = pd.Series(dates.astype("int64") // 10**9, index=raw.index).where(dates.notna())
    bad = ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        row = int(bad.argmax())
        raise DataError(f"{name} line {first_line + row}: {column} {str(raw.iloc[row])!r} is not a finite number")
    return values.to_numpy(dtype=np.float64)


def _as_text(ids: pd.Index) -> np.ndarray:
    """Ids as text, the way they are typed on a command line (integral floats lose their .0)."""
    if ids.dtype.kind == "f" and np.all(np.mod(ids.to_numpy(), 1) == 0):
        ids = ids.astype(np.int64)
    return np.asarray([str(v) for v in ids], dtype=object)


def confidence(ratings: sp.csr_matrix, kind: str, alpha: float) -> sp.csr_matrix:
    """Turn ratings into implicit's confidence values c_ui (unrated pairs count as confidence 1).

    linear: ``1 + alpha * r``; log: ``1 + alpha * log1p(r)``; binary: ``1 + alpha`` for any rating.
    """
    out = ratings.copy()
    data = out.data.astype(np.float32)
    with np.errstate(over="ignore"):  # an overflow is refused below, in one line
        if kind == "linear":
            out.data = (1.0 + alpha * data).astype(np.float32)
        elif kind == "log":
            out.data = (1.0 + alpha * np.log1p(np.maximum(data, 0))).astype(np.float32)
        elif kind == "binary":
            out.data = np.full_like(data, 1.0 + alpha)
        else:
            raise DataError(f"unknown confidence {kind!r}; expected linear, log or binary")
    if not np.isfinite(out.data).all():  # float32 overflows near 3.4e38: the model would fit NaNs
        raise DataError(
            f"confidences overflow float32 (--alpha {alpha:g}, ratings up to {np.abs(data).max():g}); lower "
            f"--alpha or scale the ratings down"
        )
    return out
