"""``mltk export RUN``: a run's model as a file that runs outside mltk, checked against it before it is kept.

    from mltoolkit.export import export
    entry = export("runs/transfer/shapes", "onnx")      # -> runs/transfer/shapes/export/model.onnx
    entry["parity"]["real"]["max_abs_diff"]

Formats per technique are in the registry (``techniques.py``). rl, transfer and segment go through torch's
exporters (``neural``), boost through onnxmltools (``boost``), recommend writes arrays (``recommend``).
Every export is compared with its source model (``parity``) and recorded in the run's ``export.json``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from datetime import datetime, timezone
from importlib import import_module
from pathlib import Path
from typing import Any

from mltoolkit import __version__
from mltoolkit.export.record import add_export, stored_path
from mltoolkit.export.request import Request, make_request
from mltoolkit.techniques import TECHNIQUES

TORCH_TECHNIQUES = tuple(t.name for t in TECHNIQUES if "torchscript" in t.exports)


def export(run: str | Path, fmt: str, *, runs_dir: str | Path = "runs", **options: Any) -> dict[str, Any]:
    """Export ``run`` as ``fmt`` (options: output, opset, batch, half, labels, force).

    Returns the run's new export.json entry, plus ``file``: the path written.
    """
    from mltoolkit.export.deps import require
    from mltoolkit.export.parity import ParityError  # numpy: imported only when a command runs

    request = make_request(run, fmt, runs_dir=runs_dir, **options)
    if fmt == "onnx":
        require("onnx-torch" if request.technique in TORCH_TECHNIQUES else "onnx-lightgbm")
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr):  # exporters print progress; stdout is for the result
            result = _export(request)
    except ParityError as exc:
        add_export(request.run_dir, {**_entry(request, started), "ok": False, "error": str(exc), "parity": exc.checks})
        raise
    entry = {**_entry(request, started), "ok": True, **result}
    add_export(request.run_dir, entry)
    return {**entry, "file": str(request.output)}


def _export(request: Request) -> dict[str, Any]:
    adapter = import_module(f"mltoolkit.export.{request.technique}")
    if request.technique in TORCH_TECHNIQUES:
        from mltoolkit.export import neural

        source = adapter.source(request.run_dir)
        return {**neural.export(source, request), "notes": source.notes}
    return adapter.export(request)


def _entry(request: Request, started: float) -> dict[str, Any]:
    return {
        "format": request.fmt,
        "path": stored_path(request.run_dir, request.output),
        "technique": request.technique,
        "opset": request.opset,
        "batch": request.batch or "dynamic",
        "half": request.half,
        "labels": request.labels,
        "mltk_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 2),
    }
