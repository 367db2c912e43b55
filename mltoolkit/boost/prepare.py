"""From a ``Table`` to LightGBM's inputs: features, label, weight, group sizes and initial scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.boost.booster import lightgbm
from mltoolkit.boost.data import Table
from mltoolkit.boost.schema import TASKS, Schema, class_labels, infer_features, infer_task, numbers
from mltoolkit.core.console import info
from mltoolkit.core.errors import DataError

if TYPE_CHECKING:
    from mltoolkit.boost.params import BoostConfig


@dataclass
class Prepared:
    """One data set in LightGBM's terms (rows already in group order for ranking)."""

    X: Any  # float64 matrix (Fortran order) or CSR
    y: np.ndarray | None
    weight: np.ndarray | None = None
    group: np.ndarray | None = None  # group sizes, in row order
    init: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self.X.shape[0]

    def subset(self, rows: np.ndarray) -> Prepared:
        """Rows by index (``rows`` must keep whole groups together for ranking data)."""
        return Prepared(
            self.X[rows],
            None if self.y is None else self.y[rows],
            None if self.weight is None else self.weight[rows],
            None,
            None if self.init is None else self.init[rows],
        )


def to_dataset(data: Prepared, params: dict[str, Any], categorical: list[int], reference: Any = None) -> Any:
    """A ``lightgbm.Dataset`` of ``data``, keeping the raw matrix (``lightgbm.cv`` cuts its folds from it)."""
    lgb = lightgbm()
    return lgb.Dataset(
        data.X,
        label=data.y,
        weight=data.weight,
        group=data.group,
        init_score=data.init,
        categorical_feature=categorical if categorical else "auto",
        params=params,
        reference=reference,
        free_raw_data=False,
    )


def target_name(table: Table, target: str | None, label_column: int | None) -> str | None:
    """The target's column name: ``--target``, ``--label-column N``, or column 0 of LightGBM's headerless files."""
    if table.sparse is not None:
        return None  # LibSVM: the label is the first field of each line
    columns = [str(c) for c in table.frame.columns]
    if target is not None:
        if target not in columns:
            raise DataError(f"{table.source}: no target column {target!r}; columns are {_listing(columns)}")
        return target
    if label_column is None and table.headerless:
        label_column = 0
    if label_column is None:
        raise DataError(f"{table.source}: say which column to predict with --target COL (columns: {_listing(columns)})")
    if not 0 <= label_column < len(columns):
        raise DataError(f"{table.source}: --label-column {label_column} is out of range (0..{len(columns) - 1})")
    return columns[label_column]


def _listing(columns: list[str]) -> str:
    return ", ".join(columns[:12]) + (f", ... ({len(columns)} in all)" if len(columns) > 12 else "")


def schema_for(table: Table, target: str | None, cfg: BoostConfig, *, use_init: bool) -> Schema:
    """``build_schema`` with the columns the config names: one call for one process and for ``--dask``."""
    return build_schema(
        table,
        target=target,
        task=cfg.task,
        weight=cfg.weight,
        group=cfg.group,
        ids=cfg.id,
        drop=cfg.drop,
        categorical=cfg.categorical,
        use_init=use_init,
    )


def build_schema(
    table: Table,
    *,
    target: str | None,
    task: str,
    weight: str | None,
    group: str | None,
    ids: list[str],
    drop: list[str],
    categorical: list[str],
    use_init: bool,
) -> Schema:
    """Decide the encoding from the training table: features, categorical levels, task, classes."""
    import pandas as pd

    if table.sparse is not None:
        labels = pd.Series(table.labels)
        has_group = "query" in table.side
        features = []
        width = table.sparse.shape[1]
    else:
        frame = table.frame
        named = [c for c in [weight, group, *ids, *drop] if c is not None]
        absent = [c for c in named if c not in frame.columns]
        if absent:
            raise DataError(f"{table.source}: column(s) {', '.join(absent)} not in the table")
        for option, columns in (("--weight", [weight]), ("--group", [group]), ("--drop", drop)):
            if target in columns:
                raise DataError(f"{option} {target!r}: that is the target column, it cannot also be {option[2:]}")
        labels = frame[target]
        has_group = group is not None or "query" in table.side
        exclude = {target, weight, group, *ids, *drop}
        features = infer_features(frame, exclude, set(categorical), table.source)
        width = None
    if labels.isna().all():
        raise DataError(f"{table.source}: target {target or 'label'!r} is empty")
    if task == "auto":
        task = infer_task(labels, has_group)
        info(f"task: {task} (inferred from the target; force another with --task)")
    elif task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected auto, {', '.join(TASKS)}")
    if task == "lambdarank" and not has_group:
        raise DataError(f"{table.source}: ranking needs query groups: --group COL or a .query side file")
    classes = class_labels(labels, table.source, target or "label") if task in ("binary", "multiclass") else None
    if task == "binary" and classes is not None and len(classes) > 2:
        raise DataError(f"{table.source}: binary task but target has {len(classes)} classes; use --task multiclass")
    return Schema(
        task=task,
        target=target,
        features=features,
        classes=classes,
        id_columns=list(ids),
        weight=weight,
        group=group,
        sparse_width=width,
        headerless=table.headerless,
        init_score=use_init and "init" in table.side,
    )


def prepare(
    table: Table, schema: Schema, *, with_target: bool = True, warned: set[str] | None = None, dtype: Any = "float64"
) -> Prepared:
    """Encode ``table`` with ``schema``: the same columns, levels and classes as in training."""
    X = schema.encode(table, warned=warned, dtype=dtype)
    init = table.side.get("init") if schema.init_score else None
    if not with_target:  # scoring reads the features alone (rows keep their order; a weight column is unused)
        return Prepared(X, None, init=init)
    if table.sparse is not None:
        y = schema.encode_target(table.labels, table.source)
    else:
        if schema.target not in table.frame.columns:
            raise DataError(f"{table.source}: no target column {schema.target!r} to evaluate against")
        y = schema.encode_target(table.frame[schema.target].to_numpy(), table.source)
    weight = None
    if schema.weight is not None and table.frame is not None and schema.weight in table.frame.columns:
        weight = numbers(table.frame[schema.weight], schema.weight, table.source, table.first_row)
    elif "weight" in table.side:
        weight = table.side["weight"]
    prepared = Prepared(X, y, weight, None, init)
    if schema.task == "lambdarank":
        prepared = _grouped(prepared, table, schema)
    return prepared


def _grouped(prepared: Prepared, table: Table, schema: Schema) -> Prepared:
    """Group sizes from a .query file, or from a group column (rows stably sorted so groups are contiguous)."""
    if schema.group is not None and table.frame is not None and schema.group in table.frame.columns:
        import pandas as pd

        codes, _ = pd.factorize(table.frame[schema.group])
        order = np.argsort(codes, kind="stable")
        if np.any(np.diff(order) != 1):  # not already contiguous: sort, keeping row order within groups
            prepared = prepared.subset(order)
            codes = codes[order]
        prepared.group = np.diff(np.flatnonzero(np.r_[True, np.diff(codes) != 0, True]))
    elif "query" in table.side:
        prepared.group = table.side["query"]
    else:
        raise DataError(f"{table.source}: ranking data needs its group column {schema.group!r} or a .query file")
    return prepared


def split_validation(data: Prepared, fraction: float, seed: int, ranking: bool) -> tuple[Prepared, Prepared]:
    """A random hold-out of ``fraction`` of the rows (of whole query groups for ranking)."""
    rng = np.random.default_rng(seed)
    if ranking:
        starts = np.r_[0, np.cumsum(data.group)[:-1]]
        held = rng.random(len(data.group)) < fraction
        if held.all() or not held.any():
            held[: max(1, int(len(held) * fraction))] = True
            held[-1] = False
        pick = lambda mask: np.concatenate([np.arange(s, s + g) for s, g in zip(starts[mask], data.group[mask])])  # noqa: E731
        train, valid = data.subset(pick(~held)), data.subset(pick(held))
        train.group, valid.group = data.group[~held], data.group[held]
        return train, valid
    held = held_rows(data.rows, fraction, seed)
    return data.subset(np.flatnonzero(~held)), data.subset(np.flatnonzero(held))


def held_rows(rows: int, fraction: float, seed: int) -> np.ndarray:
    """Which of ``rows`` rows a random hold-out of ``fraction`` validates on, as a mask; ``--dask`` draws
    it for the whole table, so its parts hold out the rows one machine would."""
    order = np.random.default_rng(seed).permutation(rows)
    cut = int(round(rows * (1 - fraction)))
    if cut < 1 or cut >= rows:
        raise DataError(f"--valid-fraction {fraction} leaves no rows to train or to validate on ({rows} rows)")
    held = np.zeros(rows, dtype=bool)
    held[order[cut:]] = True
    return held
