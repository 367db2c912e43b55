"""Running an exported file: an ONNX Runtime session with the file's metadata, and finding a run's export.

``mltk <tech> predict RUN --backend onnxruntime`` uses this through each technique's adapter in this
package (``rl.onnx_policy``, ``transfer.onnx_classifier``, ``segment.onnx_segmenter``,
``boost.onnx_model``), which give the predict command the same calls its torch or LightGBM model does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.errors import DataError
from mltoolkit.export.deps import require
from mltoolkit.export.record import read_exports


class OnnxFunction:
    """One ONNX file as a function of its single input: ``run(x)`` is its first output (CPU provider)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        require("onnx")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # ORT's shape notes would land on stderr for every call
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise DataError(f"{path}: ONNX Runtime cannot load it ({str(exc).strip().splitlines()[0]})") from None
        self.path = Path(path)
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = decode_metadata(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(None, {self.input_name: x})))


def decode_metadata(props: dict[str, str]) -> dict[str, Any]:
    """The inverse of ``neural.encode_metadata``: JSON values decoded, plain text kept."""
    decoded: dict[str, Any] = {}
    for key, value in props.items():
        try:
            decoded[key] = json.loads(value)
        except ValueError:
            decoded[key] = value
    return decoded


def open_export(
    run: str | Path, runs_dir: str | Path, technique: str, threads: int | None = None
) -> tuple[Path, OnnxFunction]:
    """``(run directory, its newest plain ONNX export)`` for a RUN argument, as predict commands take it.

    The extra is checked first: without ONNX Runtime, being told to export first would not help."""
    from mltoolkit.core.runs import resolve_run_dir

    require("onnx")
    run_dir = resolve_run_dir(run, runs_dir, technique)
    return run_dir, OnnxFunction(find_export(run_dir, "onnx"), threads)


def find_export(run_dir: Path, fmt: str = "onnx") -> Path:
    """The newest passing plain export of ``run_dir`` in ``fmt`` still on disk: fp32, dynamic batch, class
    scores (not ``--labels``), so that it runs the same inputs as the technique's own predict."""
    plain = {"format": fmt, "ok": True, "half": False, "labels": False, "batch": "dynamic"}
    for entry in reversed(read_exports(run_dir)):
        if any(entry.get(key) != value for key, value in plain.items()):
            continue
        path = Path(entry["path"])
        path = path if path.is_absolute() else run_dir / path
        if path.is_file():
            return path
    raise DataError(f"{run_dir}: no plain {fmt} export; run `mltk export {run_dir} --format {fmt}` first")
