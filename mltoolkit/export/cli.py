"""``mltk export RUN``: one command over ``mltoolkit.export.export``; prints the export.json entry as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options
from mltoolkit.techniques import TECHNIQUES

_FORMATS = "; ".join(f"{t.name} {' or '.join(t.exports)}" for t in TECHNIQUES)  # from the registry


def export_command(
    run: options.RunRef,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"What to write: {_FORMATS}.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file to write. \\[default: RUN/export/model.<ext>]")
    ] = None,
    opset: Annotated[int | None, typer.Option("--opset", help="ONNX opset. \\[default: the exporter's]")] = None,
    batch: Annotated[str, typer.Option("--batch", help="dynamic, or a batch size fixed in the graph.")] = "dynamic",
    half: Annotated[
        bool, typer.Option("--half", help="fp16 weights; parity reports fp16's error, tolerates it.")
    ] = False,
    labels: Annotated[
        bool, typer.Option("--labels", help="segment: output argmax labels (N, H, W) instead of class scores.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")] = False,
    runs_dir: options.RunsDir = Path("runs"),
    quiet: options.Quiet = False,
) -> None:
    """Export a run's model (normalisation and metadata inside), checked for parity against it."""
    from mltoolkit.core.console import emit_json, info, set_quiet
    from mltoolkit.export import export

    set_quiet(quiet)
    entry = export(
        run, fmt, runs_dir=runs_dir, output=output, opset=opset, batch=batch, half=half, labels=labels, force=force
    )
    for name, check in entry["parity"].items():
        info(
            f"parity ({name}): "
            + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in check.items())
        )
    for note in entry.get("notes", []):
        info(f"note: {note}")
    emit_json({k: entry[k] for k in ("file", "format", "technique", "ok", "parity", "seconds")})
