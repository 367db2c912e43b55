"""`mltk transfer`: transfer learning on an image folder: fine-tune or feature-extract a pretrained network.

Thin Typer layer over mltoolkit.transfer.trainer / evaluation / prediction; torch and torchvision
are imported only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options

app = typer.Typer(
    help="Transfer learning on an image folder: fine-tune or feature-extract a pretrained network.",
    no_args_is_help=True,
)

DataDir = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Image folder: DIR/train/<class>/* + DIR/val/<class>/*, or DIR/<class>/* (split by --val-fraction).",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option("--workers", help="DataLoader worker processes. \\[default: one per spare core, at most 8]"),
]
BatchSize = Annotated[int, typer.Option("--batch-size", "-b", help="Images per batch.")]


def train_command(
    data: DataDir = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="torchvision classifier (`mltk transfer models`). \\[default: resnet18]"),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            help="DEFAULT, a torchvision weights name (IMAGENET1K_V1), none (random init), or PATH.pth (a state dict). "
            "\\[default: DEFAULT]"
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="finetune (all layers train) or feature-extract (frozen, cached backbone; new head only). "
            "\\[default: finetune]"
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs. \\[default: 25]")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", "-b", help="Images per batch. \\[default: 32]")
    ] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd (with momentum) or adamw. \\[default: sgd]")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (the peak, for onecycle). \\[default: 0.001]")] = None,
    momentum: Annotated[float | None, typer.Option(help="SGD momentum. \\[default: 0.9]")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay. \\[default: 0]")] = None,
    schedule: Annotated[
        str | None, typer.Option(help="step, cosine, onecycle, poly or constant, stepped per batch. \\[default: step]")
    ] = None,
    warmup_epochs: Annotated[float | None, typer.Option(help="Linear warmup length in epochs. \\[default: 0]")] = None,
    step_size: Annotated[int | None, typer.Option(help="step schedule: epochs between decays. \\[default: 7]")] = None,
    gamma: Annotated[float | None, typer.Option(help="step schedule: decay factor. \\[default: 0.1]")] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Label smoothing of the loss. \\[default: 0]")] = None,
    balance: Annotated[
        bool | None, typer.Option("--balance/--no-balance", help="Draw classes equally often (weighted sampler).")
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option(help="Stop after this many epochs without a better val accuracy; 0 = never. \\[default: 0]"),
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(
            help="none, basic (RandomResizedCrop + flip), strong (+ TrivialAugment, RandomErasing) or auto "
            "(basic when fine-tuning, none when feature-extracting). \\[default: auto]"
        ),
    ] = None,
    views: Annotated[
        int | None,
        typer.Option(
            help="feature-extract with --augment basic|strong: augmented views cached per image. \\[default: 4]"
        ),
    ] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Input crop size in pixels. \\[default: the weights' own, 224 for most]")
    ] = None,
    val_fraction: Annotated[
        float | None, typer.Option(help="Share held out for validation when DATA has no val/ folder. \\[default: 0.2]")
    ] = None,
    strict: Annotated[
        bool | None, typer.Option("--strict/--no-strict", help="An unreadable image is an error (exit 3), not a skip.")
    ] = None,
    amp: Annotated[bool | None, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA. \\[default: on]")] = None,
    channels_last: Annotated[
        bool | None,
        typer.Option("--channels-last/--no-channels-last", help="channels_last memory on CUDA. \\[default: on]"),
    ] = None,
    workers: Workers = None,
    config: options.ConfigFile = None,
    device: options.Device = None,
    seed: options.Seed = None,
    threads: options.Threads = None,
    deterministic: options.Deterministic = False,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: options.Resume = None,
    quiet: options.Quiet = False,
) -> None:
    """Fine-tune (or feature-extract) a torchvision classifier on an image folder; keep the best model.

    Data-parallel on N GPUs or processes: torchrun --nproc_per_node N -m mltoolkit transfer finetune ...
    """
    from mltoolkit.core.config import build_config, load_config_file
    from mltoolkit.core.console import emit_json, set_quiet
    from mltoolkit.core.distributed import launched_world
    from mltoolkit.core.runs import Run, resolve_run_dir
    from mltoolkit.transfer.config import TransferConfig
    from mltoolkit.transfer.trainer import train

    set_quiet(quiet)
    flags = {
        "data": data, "model": model, "weights": weights, "mode": mode, "epochs": epochs, "batch_size": batch_size,
        "optimizer": optimizer, "lr": lr, "momentum": momentum, "weight_decay": weight_decay, "schedule": schedule,
        "warmup_epochs": warmup_epochs, "step_size": step_size, "gamma": gamma, "label_smoothing": label_smoothing,
        "balance": balance, "patience": patience, "augment": augment, "views": views, "image_size": image_size,
        "val_fraction": val_fraction, "strict": strict, "amp": amp, "channels_last": channels_last,
        "workers": workers, "device": device, "seed": seed, "threads": threads,
        "deterministic": deterministic or None,
    }  # fmt: skip
    resumed_layer = Run(resolve_run_dir(resume, runs_dir, "transfer")).read_config() if resume else None
    file_layer = load_config_file(config) if config else None
    cfg = build_config(TransferConfig, resumed_layer, file_layer, flags, source="option")
    result = train(cfg, runs_dir=runs_dir, name=name, resume=resume)
    if launched_world().is_main:  # under torchrun: one result line, from rank 0
        emit_json(result)


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
    strict: Annotated[bool, typer.Option("--strict", help="An unreadable image is an error (exit 3).")] = False,
    device: options.Device = None,
    threads: options.Threads = None,
    workers: Workers = None,
    runs_dir: options.RunsDir = Path("runs"),
    fmt: options.ResultFormat = "auto",
    quiet: options.Quiet = False,
) -> None:
    """Accuracy, top-k, per-class precision/recall/F1, confusion matrix; writes eval.json, plots/confusion.png."""

    from mltoolkit.core.console import emit_json, print_result, set_quiet, wants_json
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
    labels = result["confusion"]["labels"]
    rows = [{"true \\ predicted": t, **dict(zip(labels, row))} for t, row in zip(labels, result["confusion"]["matrix"])]
    print_result(rows, fmt, title="confusion matrix")
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
    strict: Annotated[
        bool, typer.Option("--strict", help="An unreadable image is an error (exit 3), not a skip.")
    ] = False,
    device: options.Device = None,
    threads: options.Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    quiet: options.Quiet = False,
) -> None:
    """Classify images: one record per image on stdout (or --output), batched."""
    from mltoolkit.core.console import info, set_quiet
    from mltoolkit.core.errors import UsageError
    from mltoolkit.transfer.prediction import predict

    set_quiet(quiet)
    if not inputs:
        raise UsageError("give image files, folders, or - to read paths from stdin")
    count = predict(
        run, inputs, runs_dir=runs_dir, output=output, fmt=fmt, top_k=top_k, batch_size=batch_size,
        device=device or "auto", threads=threads, strict=strict,
    )  # fmt: skip
    info(f"{count} images classified")


@app.command("models")
def models_command(fmt: options.ResultFormat = "auto") -> None:
    """List torchvision's classification models with their weights, size and ImageNet top-1 accuracy."""
    from mltoolkit.core.console import print_result
    from mltoolkit.transfer.model import describe_models

    print_result(describe_models(), fmt, title="torchvision classification models (--model)")
