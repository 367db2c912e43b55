"""What ``mltk export`` was asked for, checked against the run before anything is built."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mltoolkit.core.contract import provenance
from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.runs import Run, resolve_run_dir
from mltoolkit.techniques import SEGMENT, get

EXTENSIONS = {"onnx": "onnx", "torchscript": "pt", "npz": "npz", "parquet": "parquet"}


@dataclass(frozen=True)
class Request:
    run_dir: Path
    technique: str
    fmt: str
    output: Path
    opset: int | None = None
    batch: int | None = None  # None: dynamic batch size
    half: bool = False
    labels: bool = False

    def provenance(self) -> dict[str, str]:
        """The metadata every exported file carries about where it came from."""
        return provenance(self.technique, self.run_dir)


def parse_batch(text: str) -> int | None:
    """``dynamic`` or a positive batch size baked into the graph."""
    if text == "dynamic":
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--batch must be dynamic or a positive integer (got {text!r})")
    return int(text)


def make_request(
    run: str | Path,
    fmt: str,
    *,
    runs_dir: str | Path = "runs",
    output: str | Path | None = None,
    opset: int | None = None,
    batch: str = "dynamic",
    half: bool = False,
    labels: bool = False,
    force: bool = False,
) -> Request:
    """Resolve the run and the output file; refuse a format the technique cannot write, or an existing file."""
    fixed_batch = parse_batch(batch)
    if opset is not None and fmt != "onnx":
        raise UsageError(f"--opset is for ONNX files, not {fmt}")
    if opset is not None and not 7 <= opset <= 30:
        raise UsageError(f"--opset must be between 7 and 30 (got {opset})")
    run_dir = resolve_run_dir(run, runs_dir)
    technique = Run(run_dir).technique
    formats = get(technique).exports
    if fmt not in formats:
        can = ", ".join(formats) if formats else "none"
        raise DataError(f"{technique} runs cannot be exported as {fmt}; they export as: {can}")
    if labels and technique != SEGMENT.name:
        raise UsageError("--labels is for segment runs (argmax labels instead of class scores)")
    if str(output) == "-":
        raise UsageError("--output -: an export is a binary file; give a file name")
    target = Path(output) if output is not None else default_output(run_dir, fmt, half, labels)
    if target.is_dir():
        raise DataError(f"--output {target}: is a directory; give a file name")
    if target.exists() and not force:
        raise DataError(f"{target}: already exists; pass --force to overwrite it")
    return Request(run_dir, technique, fmt, target, opset, fixed_batch, half, labels)


def default_output(run_dir: Path, fmt: str, half: bool, labels: bool) -> Path:
    """``<run>/export/model[-labels][-fp16].<ext>``: one file per variant, beside the run it came from."""
    stem = "model" + ("-labels" if labels else "") + ("-fp16" if half else "")
    return run_dir / "export" / f"{stem}.{EXTENSIONS[fmt]}"
