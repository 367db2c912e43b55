"""`mltk segment`: semantic segmentation with fully convolutional networks (train, evaluate, predict)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options
from mltoolkit.core.params import config_options
from mltoolkit.segment.config import SegmentConfig
from mltoolkit.techniques import SEGMENT

app = typer.Typer(
    help="Semantic segmentation with fully convolutional networks (torchvision FCN, DeepLabV3, LRASPP).",
    no_args_is_help=True,
)
Backend = options.backend_option(SEGMENT.backends)
BatchSize = Annotated[int | None, typer.Option("--batch-size", help="Images per forward pass. \\[default: the run's]")]


@app.command("train")
@config_options(SegmentConfig)
def train_command(
    flags: dict,
    data_arg: Annotated[
        Path | None, typer.Argument(metavar="[DATA]", help="Data root (same as --data).", show_default=False)
    ] = None,
    config: options.ConfigFile = None,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: options.Resume = None,
    quiet: options.Quiet = False,
) -> None:
    """Train a segmentation model; prints one JSON object (run_dir, best val mIoU) at the end."""
    from mltoolkit.core.config import resolve_config
    from mltoolkit.core.console import emit_json, set_quiet
    from mltoolkit.core.distributed import launched_world
    from mltoolkit.core.engine import result_line, resumed_engine_config
    from mltoolkit.core.errors import UsageError
    from mltoolkit.segment.training import SegmentTask, train

    set_quiet(quiet)
    if data_arg is not None:
        if flags["data"] is not None and Path(flags["data"]) != data_arg:
            raise UsageError("give the data root once: as DATA or as --data")
        flags["data"] = str(data_arg)
    saved = resumed_engine_config(resume, runs_dir, SEGMENT.name, flags)
    cfg = resolve_config(SegmentConfig, flags, config_file=config, resumed=saved)
    if not cfg.data:
        raise UsageError("no data: pass DATA or --data DIR")
    result = train(cfg, runs_dir=runs_dir, name=name, resume=resume)
    if launched_world().is_main:  # under torchrun: one result line, from rank 0
        accuracy = (result.summary.get("best") or {}).get("pixel_accuracy")
        emit_json(result_line(result, SegmentTask.monitor, val_pixel_accuracy=accuracy))


@app.command("evaluate")
def evaluate_command(
    run: options.RunRef,
    data: Annotated[
        Path | None, typer.Option("--data", help="Data root. \\[default: the one the run trained on]")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split to score: val or test (or train).")] = "val",
    batch_size: BatchSize = None,
    device: options.Device = None,
    threads: options.Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    fmt: options.ResultFormat = "auto",
    quiet: options.Quiet = False,
) -> None:
    """Pixel accuracy, mean IoU, per-class IoU and confusion matrix over a split; writes eval.json."""

    from mltoolkit.core.console import emit_json, print_confusion, print_result, set_quiet, wants_json
    from mltoolkit.segment.evaluation import evaluate

    set_quiet(quiet)
    result = evaluate(
        run, data, split=split, runs_dir=runs_dir, device=device or "auto", threads=threads, batch_size=batch_size
    )
    if wants_json(fmt):
        emit_json(result)
        return
    headline = {k: result[k] for k in ("split", "images", "pixel_accuracy", "miou")}
    print_result(headline, fmt, title=f"segment evaluate ({result['checkpoint']})")
    print_result([{"class": name, "iou": iou} for name, iou in result["iou"].items()], fmt, title="per-class IoU")
    print_confusion(result["classes"], result["confusion_matrix"], fmt, "confusion matrix (pixels)")


@app.command("predict")
def predict_command(
    run: options.RunRef,
    sources: Annotated[list[str], typer.Argument(help="Image files, folders, or - to read paths from stdin.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the masks (<stem>.png, palette PNG).")],
    overlay: Annotated[
        bool, typer.Option("--overlay", help="Also write <stem>_overlay.png: class colours blended over the image.")
    ] = False,
    batch_size: BatchSize = None,
    device: options.Device = None,
    threads: options.Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    fmt: Annotated[str, typer.Option("--format", help="jsonl (the masks themselves are PNG files).")] = "jsonl",
    strict: options.Strict = False,
    backend: Backend = SEGMENT.backends[0],
    quiet: options.Quiet = False,
) -> None:
    """Write one mask PNG per image (same size as the image); print one JSON line per image."""
    from mltoolkit.core.console import emit_json, set_quiet
    from mltoolkit.segment.prediction import predict_files

    set_quiet(quiet)
    options = {"runs_dir": runs_dir, "device": device or "auto", "threads": threads, "batch_size": batch_size}
    options |= {"overlay": overlay, "fmt": fmt, "strict": strict, "backend": backend}
    for record in predict_files(run, sources, output, **options):
        emit_json(record)
