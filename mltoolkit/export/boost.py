"""boost: the LightGBM model to ONNX through onnxmltools (the maintained converter of LightGBM models).

The graph takes the float32 feature matrix in the schema's column order, categorical features as
their level codes (the index in the schema's levels) and missing values as NaN: what mltk's own
predict feeds LightGBM. The native ``model.txt`` needs no export: LightGBM reads it from C, C++,
Python, R and Java alike.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.io import atomic_path
from mltoolkit.export import parity
from mltoolkit.export.neural import encode_metadata
from mltoolkit.export.request import Request
from mltoolkit.export.runtime import OnnxFunction, open_export
from mltoolkit.techniques import BOOST

SAMPLE = 256  # table rows for the parity check
CLASSIFICATION = ("binary", "multiclass")


def load(run_dir: Path) -> Any:
    """The run's LightGBM model: booster and schema."""
    from mltoolkit import boost

    return boost.load(run_dir).model


def export(request: Request) -> dict[str, Any]:
    if request.half or request.batch is not None:
        raise UsageError("--half and --batch N are for torch models; a LightGBM graph takes any batch in float32")
    model = load(request.run_dir)
    real = sample_rows(model, SAMPLE)
    random = shuffled_columns(real) if len(real) else synthetic_rows(model.schema, SAMPLE)
    metadata = {**request.provenance(), **describe(model)}
    with atomic_path(request.output) as tmp:
        _write(model, tmp, request.opset, metadata)
        function = OnnxFunction(tmp)
        checks = {
            name: _check(model, function, sample)
            for name, sample in (("real", real), ("random", random))
            if len(sample)
        }
        parity.check(checks, False, f"boost onnx (objective {metadata['objective']})")
    notes = [] if len(real) else ["training table not found: parity checked on synthetic rows only"]
    return {"parity": checks, "metadata": metadata, "notes": notes}


def describe(model: Any) -> dict[str, Any]:
    schema = model.schema
    width = schema.sparse_width or len(schema.features)
    return {
        "task": schema.task,
        "objective": str(model.booster.params.get("objective", "regression")),
        "class_names": schema.classes,
        "feature_names": [f"f{i}" for i in range(width)] if schema.sparse_width else schema.names,
        "categorical_levels": {f.name: f.levels for f in schema.features if f.categorical},
        "input_shape": ["batch", width],
        "input_layout": "float32 features in feature_names order; categorical as level codes; missing as NaN",
        "output": "probabilities (batch, classes)" if schema.task in CLASSIFICATION else "variable (batch, 1)",
        "init_score": "not included: add a run's initial scores to the raw score yourself" if schema.init_score else "",
    }


def _write(model: Any, path: Path, opset: int | None, metadata: dict[str, Any]) -> None:
    import onnx
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    width = metadata["input_shape"][1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto = convert_lightgbm(
                model.booster, initial_types=[("features", FloatTensorType([None, width]))],
                zipmap=False, target_opset=opset,
            )  # fmt: skip
    except (NotImplementedError, RuntimeError, ValueError) as exc:
        raise DataError(
            f"onnxmltools cannot convert LightGBM objective {metadata['objective']!r} to ONNX "
            f"({str(exc).strip().splitlines()[0]}); the native model.txt is portable as it is"
        ) from None
    onnx.helper.set_model_props(proto, encode_metadata(metadata))
    onnx.save(proto, str(path))


def _check(model: Any, function: OnnxFunction, X: np.ndarray) -> dict[str, Any]:
    expected = _as_matrix(model.booster.predict(X), model.schema.task)
    got = _onnx_output(function, X.astype(np.float32), model.schema.task)
    return parity.compare(expected, got, class_axis=1 if model.schema.task in CLASSIFICATION else None)


def _as_matrix(pred: np.ndarray, task: str) -> np.ndarray:
    """LightGBM's output as (rows, columns): a binary probability becomes both classes' columns."""
    if task == "binary":
        return np.stack([1 - pred, pred], axis=1)
    return pred.reshape(len(pred), -1)


def _onnx_output(function: OnnxFunction, X: np.ndarray, task: str) -> np.ndarray:
    outputs = function.outputs(np.ascontiguousarray(X, dtype=np.float32))
    return outputs["probabilities"] if task in CLASSIFICATION else outputs["variable"].reshape(len(X), -1)


def sample_rows(model: Any, count: int) -> np.ndarray:
    """Up to ``count`` rows of the run's training table, encoded by its schema (empty when it is gone)."""
    from mltoolkit.boost.data import read_data
    from mltoolkit.core.io import read_json

    data = read_json(model.path / "config.json").get("data")
    if not data or data == "-" or not Path(data).is_file():
        return np.empty((0, 0))
    X = model.schema.encode(read_data(data, side_files=False), warned=set())
    X = X[:count]
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


def shuffled_columns(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rows no one has seen, each column's values (NaN and level codes included) kept but shuffled apart."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.permutation(X[:, j]) for j in range(X.shape[1])])


def synthetic_rows(schema: Any, count: int, seed: int = 0) -> np.ndarray:
    """Normal numbers, random level codes, one value in ten missing: for runs whose table is gone."""
    rng = np.random.default_rng(seed)
    width = schema.sparse_width or len(schema.features)
    X = rng.standard_normal((count, width))
    for j, feature in enumerate(schema.features if not schema.sparse_width else []):
        if feature.categorical:
            X[:, j] = rng.integers(0, max(1, len(feature.levels or [])), count)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


# What boost's predict asks LightGBM for beyond the outputs, as a user asked for it.
NEEDS_LIGHTGBM = {"pred_contrib": "--explain (contributions)", "raw_score": "initial scores (DATA.init)"}


@dataclass
class OnnxModel:
    """What ``boost predict`` reads from its ``Model`` (``path``, ``schema``, ``raw_predict``), run by ONNX Runtime."""

    path: Path
    schema: Any
    function: OnnxFunction

    def raw_predict(self, X: Any, threads: int, **kwargs: Any) -> np.ndarray:
        """LightGBM's ``predict`` output shapes: binary P(class 1) (n,), multiclass (n, k), else values (n,).

        The graph gives the final outputs alone: what asks LightGBM for more (``kwargs``) is refused."""
        if kwargs:
            what = " and ".join(NEEDS_LIGHTGBM.get(name, name) for name in kwargs)
            raise DataError(f"{what} need LightGBM's own model; leave out --backend onnxruntime")
        dense = X.toarray() if hasattr(X, "toarray") else X
        out = _onnx_output(self.function, np.asarray(dense, dtype=np.float32), self.schema.task)
        if self.schema.task == "binary":
            return out[:, 1].astype(np.float64)
        return (out if self.schema.task == "multiclass" else out[:, 0]).astype(np.float64)


def onnx_model(run: str | Path, runs_dir: str | Path = "runs", threads: int | None = None) -> OnnxModel:
    """The run's newest ONNX export as a drop-in for ``boost.score.load_model(run, runs_dir)`` (no LightGBM)."""
    from mltoolkit.boost.booster import SCHEMA_FILE
    from mltoolkit.boost.schema import Schema
    from mltoolkit.core.io import read_json

    run_dir, function = open_export(run, runs_dir, BOOST.name, threads)
    return OnnxModel(run_dir, Schema.from_dict(read_json(run_dir / SCHEMA_FILE)), function)
