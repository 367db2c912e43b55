"""``load()`` and ``evaluate()``: a run's model and schema applied to new rows, tables, or tables in chunks."""

from __future__ import annotations

import json
import sys
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from mltoolkit.boost.booster import MODEL_FILE, SCHEMA_FILE, check_device, embedded_schema, load_booster
from mltoolkit.boost.data import Table, iter_chunks, read_data, read_side_file
from mltoolkit.boost.metrics import task_metrics
from mltoolkit.boost.prepare import prepare
from mltoolkit.boost.report import feature_names
from mltoolkit.boost.schema import Schema
from mltoolkit.core.console import info
from mltoolkit.core.contract import provenance
from mltoolkit.core.device import resolve_threads
from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.io import STDIO, atomic_write, read_json, write_json
from mltoolkit.core.runs import resolve_run_dir
from mltoolkit.techniques import BOOST, ONNXRUNTIME

if TYPE_CHECKING:
    from mltoolkit.export.boost import OnnxModel

CHUNK_ROWS = 200_000
ROWS = "records"  # the source that messages about ``predict``'s rows name


@dataclass
class Model:
    """A trained run: LightGBM booster + the schema that encodes inputs for it."""

    path: Path  # the run directory, or the folder of a model.txt copied out of its run
    booster: Any
    schema: Schema

    def raw_predict(self, X: Any, threads: int, **kwargs: Any) -> np.ndarray:
        return self.booster.predict(X, num_threads=threads, **kwargs)


def load_model(run: str | Path, runs_dir: str | Path = "runs") -> Model:
    """A run's model; a RUN of another technique (a checkpoint file names its run) is a one-line ``DataError``.

    A model.txt outside any run loads alone: train writes the schema into it too.
    """
    file = Path(run)
    owner = file.parent.parent if file.parent.name == "checkpoints" else file.parent
    if file.is_file() and not (owner / "config.json").exists():
        return _model_file(file)
    path = resolve_run_dir(run, runs_dir, BOOST.name)  # another technique's run is refused there
    model_file = path / MODEL_FILE
    if not model_file.exists():
        raise DataError(f"{path}: no {MODEL_FILE} (the run did not finish training)")
    return Model(path, load_booster(model_file), _schema(read_json(path / SCHEMA_FILE), path / SCHEMA_FILE))


def _model_file(model_file: Path) -> Model:
    booster = load_booster(model_file)
    schema = embedded_schema(model_file)
    if schema is None:
        raise DataError(f"{model_file}: holds no mltk schema (not written by boost train); give its run directory")
    return Model(model_file.parent, booster, _schema(schema, model_file))


def _schema(data: Any, path: Path) -> Schema:
    try:
        return Schema.from_dict(data)
    except (KeyError, TypeError, AttributeError) as exc:  # valid JSON, but not what train wrote
        raise DataError(f"{path}: damaged schema ({type(exc).__name__}: {exc}); train again") from None


def _outputs(model: Model, X: Any, init: np.ndarray | None, threads: int) -> np.ndarray:
    """Probabilities (classification), values (regression) or scores (ranking), initial scores added.

    LightGBM cannot add initial scores at predict time, so they go onto the raw score here and the
    objective's own link (sigmoid, softmax, exp, ...) follows, as LightGBM applies it.
    """
    if init is None:
        return model.raw_predict(X, threads)
    raw = model.raw_predict(X, threads, raw_score=True) + init.reshape(X.shape[0], -1).squeeze()
    params = model.booster.params
    objective = str(params.get("objective", "regression"))
    if objective in ("binary", "multiclassova"):
        raw = raw * float(params.get("sigmoid", 1.0))
    if objective in ("binary", "multiclassova", "cross_entropy"):
        return 1 / (1 + np.exp(-raw))
    if objective == "multiclass":
        raw = np.exp(raw - raw.max(axis=1, keepdims=True))
        return raw / raw.sum(axis=1, keepdims=True)
    if objective in ("poisson", "gamma", "tweedie"):
        return np.exp(raw)
    if objective == "cross_entropy_lambda":
        return np.log1p(np.exp(raw))
    return raw


def evaluate(
    run: str | Path, data: str | None = None, *, runs_dir: str | Path = "runs", threads: int | None = None
) -> dict:
    """Metrics of a run's model on a labelled table; also written to the run's eval.json."""
    if data is None:
        raise UsageError("boost evaluate needs DATA: a labelled table (a path, or - for stdin)")
    model = load_model(run, runs_dir)
    table = read_data(data)
    prepared = prepare(table, model.schema, with_target=True)
    pred = _outputs(model, prepared.X, prepared.init, resolve_threads(threads))
    metrics = {
        "rows": prepared.rows,
        **task_metrics(model.schema.task, prepared.y, pred, prepared.weight, prepared.group),
    }
    write_json(model.path / "eval.json", {"data": table.source, **metrics})
    return metrics


def load(
    run: str | Path,
    *,
    runs_dir: str | Path = "runs",
    device: str = "auto",
    threads: int | None = None,
    backend: str = BOOST.backends[0],
) -> BoostPredictor:
    """A run's model (or a model.txt with its schema.json beside it) as the contract's ``Predictor``.

    ``backend``: ``lightgbm`` (default), or ``onnxruntime`` to score through the run's ONNX export, so the
    same predict tests the file that ships (docs/export.md); contributions and initial scores need LightGBM.
    """
    check_device(device)
    if BOOST.check_backend(backend) == ONNXRUNTIME:
        from mltoolkit.export.boost import onnx_model

        return BoostPredictor(onnx_model(run, runs_dir, resolve_threads(threads)), threads)
    return BoostPredictor(load_model(run, runs_dir), threads)


class BoostPredictor:
    """Table rows in, the records ``mltk boost predict`` prints out. The CLI writes ``score``'s frames; ``predict``
    encodes rows with the same per-column encoders and makes records of the same output columns, without a frame
    either side (pandas' fixed cost, milliseconds a call, was what limited serving single rows)."""

    technique = BOOST.name

    def __init__(self, model: Model | OnnxModel, threads: int | None = None) -> None:
        self.model, self.threads = model, resolve_threads(threads)
        self.run_dir: Path | None = model.path if (model.path / "config.json").exists() else None

    def predict(self, batch: Sequence[Any], *, proba: bool = False, explain: bool = False) -> list[dict[str, Any]]:
        """One record per row (a dict of column -> value), checked against the schema like a table's rows."""
        rows = check_rows(batch)
        if not rows:
            return []
        schema = self.model.schema
        _check_id_columns(set().union(*rows), schema, ROWS)
        ids = {name: _row_ids(rows, name) for name in schema.id_columns}
        out = _output_columns(self.model, schema.encode_rows(rows, ROWS), None, proba, explain, self.threads)
        return _zip_records({**ids, **{name: values.tolist() for name, values in out.items()}})

    def score(
        self, table: Table, *, init: np.ndarray | None = None, proba: bool = False, explain: bool = False,
        warned: set[str] | None = None,
    ) -> Any:  # fmt: skip
        """The output frame of a table (or a chunk of one): id columns, prediction, probabilities, contributions."""
        import pandas as pd

        schema, frame = self.model.schema, table.frame
        ids: dict[str, np.ndarray] = {}
        if frame is not None:
            _check_id_columns(frame.columns, schema, table.source)
            ids = {name: frame[name].to_numpy() for name in schema.id_columns}
        prepared = prepare(table, schema, with_target=False, warned=warned)
        return pd.DataFrame({**ids, **_output_columns(self.model, prepared.X, init, proba, explain, self.threads)})

    def metadata(self) -> dict[str, Any]:
        schema = self.model.schema
        levels = {f.name: f.levels for f in schema.features if f.categorical}
        return {
            **provenance(self.technique, self.run_dir),
            "task": schema.task,
            "target": schema.target,
            "classes": schema.classes,
            "features": [{"name": f.name, "dtype": "category" if f.categorical else "number"} for f in schema.features],
            "feature_names": schema.names,
            "categorical_levels": levels,
            "id_columns": schema.id_columns,
            "sparse_width": schema.sparse_width,
            "input": "a row: an object of column -> value holding the feature columns (and id columns)",
            "output": ["prediction", "proba_<class>", "contrib_<feature>"],
            "options": {"proba": False, "explain": False},
        }


def check_rows(batch: Sequence[Any]) -> list[Mapping[str, Any]]:
    """``batch`` as a list of rows (dicts of column -> scalar), or a ``DataError`` naming the first bad one."""
    if isinstance(batch, (str, bytes, Mapping)) or not isinstance(batch, Sequence):
        raise DataError(f"expected a list of rows (objects of column -> value); got a {type(batch).__name__}")
    for number, row in enumerate(batch, start=1):
        if not isinstance(row, Mapping):
            raise DataError(f"records: row {number}: expected an object of column -> value, got {type(row).__name__}")
        for column, value in row.items():
            if value is not None and not isinstance(value, (str, int, float, np.generic)):
                what = type(value).__name__
                raise DataError(
                    f"{ROWS}: row {number}: column {column!r} holds a {what}; expected a number, text or null"
                )
    return list(batch)


def _row_ids(rows: list[Mapping[str, Any]], name: str) -> list[Any]:
    """An id column of rows as a table of them prints it: integers or text as they are; anything else (None, a
    missing key, floats, a mix) through the dtype pandas infers for that table's column (7 beside None is 7.0)."""
    import pandas as pd

    values = [row.get(name) for row in rows]
    if all(type(value) is int for value in values) or all(type(value) is str for value in values):
        return values
    return _scalars(pd.Series(values))


def records(frame: Any) -> list[dict[str, Any]]:
    """An output frame as JSON-ready records: Python scalars, missing ids as None (3x faster than
    ``DataFrame.to_dict``, which boxes every value on its own)."""
    return _zip_records({name: _scalars(frame[name]) for name in frame.columns})


def _scalars(column: Any) -> list[Any]:
    """A column's values as Python scalars, missing ones as None."""
    import pandas as pd

    values = column.tolist()
    return [None if pd.isna(value) else value for value in values] if column.hasnans else values


def _zip_records(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


def write_predictions(
    predictor: BoostPredictor, data: str, *, output: str | Path | None = None, fmt: str = "csv",
    proba: bool = False, explain: bool = False, chunk_rows: int = CHUNK_ROWS,
) -> int:  # fmt: skip
    """``boost predict``: score ``data`` chunk by chunk through ``predictor``, streaming CSV or JSON lines."""
    if fmt not in ("csv", "jsonl"):
        raise DataError(f"unknown --format {fmt!r}; expected csv or jsonl")
    init_all = _init_scores(predictor.model.schema, data)
    warned: set[str] = set()
    written = 0
    with _open_output(output) as handle:
        for chunk in iter_chunks(data, chunk_rows):
            if not written:
                _note_extra_columns(chunk, predictor.model.schema)
            init = None if init_all is None else init_all[written : written + chunk.num_rows]
            frame = predictor.score(chunk, init=init, proba=proba, explain=explain, warned=warned)
            _write(frame, handle, fmt, header=not written)
            written += len(frame)
    if not written:
        raise DataError(f"{data}: the table has no rows")
    if init_all is not None and len(init_all) != written:
        raise DataError(f"{data}.init: has {len(init_all)} lines but {data} has {written} rows")
    info(f"scored {written} rows with {predictor.model.path}")
    return written


def _init_scores(schema: Schema, data: str) -> np.ndarray | None:
    """A model trained with initial scores adds those of ``DATA.init`` when the file is there."""
    init_file = Path(f"{data}.init")
    if not schema.init_score or data == STDIO or not init_file.exists():
        return None
    info(f"adding initial scores from {data}.init, as in training")
    return read_side_file(init_file)


def _note_extra_columns(chunk: Table, schema: Schema) -> None:
    if chunk.frame is None:
        return
    known = set(schema.names) | {schema.target, schema.weight, schema.group, *schema.id_columns}
    extra = [c for c in chunk.frame.columns if c not in known]
    if extra:
        info(f"note: ignoring column(s) not used in training: {', '.join(map(str, extra[:10]))}")


def _check_id_columns(columns: Container[str], schema: Schema, source: str) -> None:
    missing = [c for c in schema.id_columns if c not in columns]
    if missing:
        raise DataError(f"{source}: missing id column(s) {', '.join(missing)}")


def _output_columns(
    model: Model, X: Any, init: np.ndarray | None, proba: bool, explain: bool, threads: int
) -> dict[str, np.ndarray]:
    """The model's output columns for the matrix ``X``: prediction, probabilities, contributions."""
    schema = model.schema
    columns: dict[str, np.ndarray] = {}
    out = _outputs(model, X, init, threads)
    if schema.task == "binary":
        columns["prediction"] = _labels(schema.classes)[(out > 0.5).astype(np.int64)]
        if proba:
            columns[f"proba_{schema.classes[0]}"] = 1 - out
            columns[f"proba_{schema.classes[1]}"] = out
    elif schema.task == "multiclass":
        columns["prediction"] = _labels(schema.classes)[out.argmax(axis=1)]
        if proba:
            for k, label in enumerate(schema.classes):
                columns[f"proba_{label}"] = out[:, k]
    else:
        columns["prediction"] = out
    if explain:
        contributions = model.raw_predict(X, threads, pred_contrib=True)
        if isinstance(contributions, list):  # sparse multiclass input: one matrix per class
            contributions = np.hstack([c.toarray() for c in contributions])
        elif hasattr(contributions, "toarray"):
            contributions = contributions.toarray()
        names = [*feature_names(schema), "bias"]
        if schema.task == "multiclass":
            for k, label in enumerate(schema.classes):
                block = contributions[:, k * len(names) : (k + 1) * len(names)]
                columns.update({f"contrib_{label}_{n}": block[:, j] for j, n in enumerate(names)})
        else:
            columns.update({f"contrib_{n}": contributions[:, j] for j, n in enumerate(names)})
    return columns


def _labels(classes: list[Any]) -> np.ndarray:
    """Class labels as an array to index: numeric when they are numbers (writes faster than objects)."""
    numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes)
    return np.asarray(classes) if numeric else np.asarray(classes, dtype=object)


class _open_output:
    """stdout, or an atomically written file."""

    def __init__(self, output: Any) -> None:
        self.output, self.context = output, None

    def __enter__(self) -> IO[str]:
        if self.output in (None, STDIO):
            return sys.stdout
        self.context = atomic_write(self.output)
        return self.context.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self.context is not None:
            self.context.__exit__(*exc)
        else:
            sys.stdout.flush()


def _write(frame: Any, handle: IO[str], fmt: str, header: bool) -> None:
    if fmt == "jsonl":
        handle.writelines(json.dumps(record) + "\n" for record in records(frame))
        return
    _write_csv(frame, handle, header)


def _write_csv(frame: Any, handle: IO[str], header: bool) -> None:
    """CSV through Arrow's writer (8x faster than ``DataFrame.to_csv`` on 1M rows, same round-trip floats).

    Text is quoted only where a value holds a delimiter, quote or line break, like the csv module does.
    """
    import csv

    import pyarrow as pa
    import pyarrow.csv as pc

    if header:
        csv.writer(handle, lineterminator="\n").writerow(frame.columns)
    text = [c for c in frame.columns if frame[c].dtype == object]
    needs_quotes = any(frame[c].astype(str).str.contains('[,"\n\r]', regex=True).any() for c in text)
    options = pc.WriteOptions(include_header=False, quoting_style="needed" if needs_quotes else "none")
    handle.flush()
    pc.write_csv(pa.Table.from_pandas(frame, preserve_index=False), handle.buffer, write_options=options)
    handle.buffer.flush()
