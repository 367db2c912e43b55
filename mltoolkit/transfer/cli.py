"""`mltk transfer`: transfer learning on an image folder: fine-tune or feature-extract a pretrained network.

Thin Typer layer over mltoolkit.transfer's Python API (trainer / evaluation / prediction); torch and torchvision
are imported only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options
from mltoolkit.core.params import config_options
from mltoolkit.techniques import TRANSFER
from mltoolkit.transfer.config import TransferConfig

app = typer.Typer(
    help="Transfer learning on an image folder: fine-tune or feature-extract a pretrained network.",
    no_args_is_help=True,
)

Workers = Annotated[
    int | None,
    typer.Option("--workers", help="DataLoader worker processes. \\[default: one per spare core, at most 8]"),
]
BatchSize = Annotated[int, typer.Option("--batch-size", "-b", help="Images per batch.")]
Backend = options.backend_option(TRANSFER.backends)


@config_options(TransferConfig)
def train_command(
    flags: dict,
    config: options.ConfigFile = None,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: options.Resume = None,
    quiet: options.Quiet = False,
) -> None:
    """Fine-tune (or feature-extract) a torchvision classifier on an image folder; keep the best model.

    Data-parallel on N GPUs or processes: torchrun --nproc_per_node N -m mltoolkit transfer finetune ...
    """
    from mltoolkit.core.config import resolve_config
    from mltoolkit.core.console import emit_json, set_quiet
    from mltoolkit.core.distributed import launched_world
    from mltoolkit.core.engine import result_line, resumed_engine_config
    from mltoolkit.transfer.trainer import ClassifierTask, train

    set_quiet(quiet)
    cfg = resolve_config(
        TransferConfig, flags, config_file=config, resumed=resumed_engine_config(resume, runs_dir, TRANSFER.name, flags)
    )
    result = train(cfg, runs_dir=runs_dir, name=name, resume=resume)
    if launched_world().is_main:  # under torchrun: one result line, from rank 0
        emit_json(result_line(result, ClassifierTask.monitor))


app.command("train")(train_command)
app.command("finetune", help="Alias of train: fine-tune (or feature-extract) a classifier on an image folder.")(
    train_command
)


@app.command("evaluate")
def evaluate_command(
    run: options.RunRef,
    data: Annotated[
        str | None,
        typer.Option("--data", help="DIR/val, or DIR as a <class>/ tree. \\[default: the run's validation split]"),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="k of the top-k accuracy (capped at the classes).")] = 5,
    errors: Annotated[bool, typer.Option("--errors", help="List the misclassified files.")] = False,
    batch_size: BatchSize = 32,
    strict: options.Strict = False,
    device: options.Device = None,
    threads: options.Threads = None,
    workers: Workers = None,
    runs_dir: options.RunsDir = Path("runs"),
    fmt: options.ResultFormat = "auto",
    quiet: options.Quiet = False,
) -> None:
    """Accuracy, top-k, per-class precision/recall/F1, confusion matrix; writes eval.json, plots/confusion.png."""

    from mltoolkit.core.console import emit_json, print_confusion, print_result, set_quiet, wants_json
    from mltoolkit.transfer.evaluation import evaluate

    set_quiet(quiet)
    result = evaluate(
        run, data, runs_dir=runs_dir, batch_size=batch_size, top_k=top_k, errors=errors,
        device=device or "auto", threads=threads, workers=workers, strict=strict,
    )  # fmt: skip
    if wants_json(fmt):
        emit_json(result)
        return
    headline = {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
    print_result(headline, fmt, title="transfer evaluate")
    print_result([{"class": c, **m} for c, m in result["per_class"].items()], fmt, title="per class")
    print_confusion(result["confusion"]["labels"], result["confusion"]["matrix"], fmt, "confusion matrix")
    if errors and result["errors"]:
        print_result(result["errors"], fmt, title="misclassified")


@app.command("predict")
def predict_command(
    run: options.RunRef,
    inputs: Annotated[
        list[str] | None, typer.Argument(help="Image files, folders, or - to read paths (one a line) from stdin.")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Also list the k most likely classes (JSON lines by default).")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv (path,label,probability) or jsonl. \\[default: csv; jsonl with --top-k]"),
    ] = None,
    output: options.Output = None,
    batch_size: BatchSize = 32,
    strict: options.Strict = False,
    device: options.Device = None,
    threads: options.Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    backend: Backend = TRANSFER.backends[0],
    quiet: options.Quiet = False,
) -> None:
    """Classify images: one record per image on stdout (or --output), batched."""
    from mltoolkit.core.console import info, set_quiet
    from mltoolkit.core.errors import UsageError
    from mltoolkit.transfer.prediction import predict_files

    set_quiet(quiet)
    if not inputs:
        raise UsageError("give image files, folders, or - to read paths from stdin")
    count = predict_files(
        run, inputs, runs_dir=runs_dir, output=output, fmt=fmt, top_k=top_k, batch_size=batch_size,
        device=device or "auto", threads=threads, strict=strict, backend=backend,
    )  # fmt: skip
    info(f"{count} images classified")


@app.command("models")
def models_command(fmt: options.ResultFormat = "auto") -> None:
    """List torchvision's classification models with their weights, size and ImageNet top-1 accuracy."""
    from mltoolkit.core.console import print_result
    from mltoolkit.transfer.model import describe_models

    print_result(describe_models(), fmt, title="torchvision classification models (--model)")
