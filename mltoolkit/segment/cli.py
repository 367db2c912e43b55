"""`mltk segment`: semantic segmentation with fully convolutional networks (train, evaluate, predict)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options

app = typer.Typer(
    help="Semantic segmentation with fully convolutional networks (torchvision FCN, DeepLabV3, LRASPP).",
    no_args_is_help=True,
)


def _opt(help_text: str, *names: str) -> typer.models.OptionInfo:
    """An option whose help may say ``[default: ...]``: escaped, or rich would read it as markup and drop it."""
    return typer.Option(*names, help=help_text.replace("[", "\\["))


@app.command("train")
def train_command(
    data_arg: Annotated[
        Path | None, typer.Argument(metavar="[DATA]", help="Data root (same as --data).", show_default=False)
    ] = None,
    data: Annotated[
        Path | None,
        _opt(
            "Data root: split/images + split/masks folders (train, val, optional test) or the SegNet/CamVid "
            "layout train/ + trainannot/.",
            "--data",
        ),
    ] = None,
    model: Annotated[
        str | None,
        _opt(
            "lraspp_mobilenet_v3_large, deeplabv3_mobilenet_v3_large, deeplabv3_resnet50/101, fcn_resnet50/101 "
            "(ResNet models are ~15x slower on CPU). [default: lraspp_mobilenet_v3_large]",
            "--model",
        ),
    ] = None,
    weights: Annotated[
        str | None,
        _opt("Whole-model weights: none, DEFAULT, an enum name, or a .pth file. [default: none]", "--weights"),
    ] = None,
    weights_backbone: Annotated[
        str | None,
        _opt(
            "ImageNet backbone weights: none, DEFAULT, an enum name, or a .pth file. [default: none]",
            "--weights-backbone",
        ),
    ] = None,
    size: Annotated[
        str | None, _opt("Training resolution HxW (validation resizes to it). [default: 360x480]", "--size")
    ] = None,
    scale: Annotated[
        str | None,
        _opt("Random rescale range MIN,MAX before the random crop (0.5,2 for long runs). [default: 1,1]", "--scale"),
    ] = None,
    epochs: Annotated[int | None, _opt("Epochs. [default: 30, or as many as --time-budget allows]", "--epochs")] = None,
    time_budget: Annotated[
        float | None,
        _opt(
            "Wall-clock minutes for the whole command; epochs are planned to fit and the LR decays to 0 at the end.",
            "--time-budget",
        ),
    ] = None,
    batch_size: Annotated[
        int | None, _opt("Images per batch (last incomplete batch dropped). [default: 8]", "--batch-size")
    ] = None,
    optimizer: Annotated[str | None, _opt("adamw or sgd (momentum 0.9). [default: adamw]", "--optimizer")] = None,
    lr: Annotated[float | None, _opt("Peak learning rate. [default: 5e-3 adamw, 0.02 sgd]", "--lr")] = None,
    weight_decay: Annotated[
        float | None, _opt("Weight decay. [default: 1e-2 adamw, 1e-4 sgd]", "--weight-decay")
    ] = None,
    schedule: Annotated[
        str | None,
        _opt("poly (torchvision reference), cosine, step, onecycle or constant. [default: poly]", "--schedule"),
    ] = None,
    warmup_epochs: Annotated[float | None, _opt("Linear warmup epochs. [default: 1]", "--warmup-epochs")] = None,
    loss: Annotated[str | None, _opt("ce, dice or ce+dice. [default: ce]", "--loss")] = None,
    class_weights: Annotated[
        str | None,
        _opt(
            "none, auto (from training pixel counts) or one weight per class, comma-separated. [default: auto]",
            "--class-weights",
        ),
    ] = None,
    aux_loss: Annotated[
        bool | None,
        _opt("Auxiliary head loss (FCN/DeepLab). [default: on for FCN/DeepLab]", "--aux-loss/--no-aux-loss"),
    ] = None,
    bn_momentum: Annotated[float | None, _opt("BatchNorm momentum. [default: 0.1]", "--bn-momentum")] = None,
    ignore_index: Annotated[
        int | None,
        _opt(
            "Mask value of unlabelled pixels. [default: 255; SegNet layout: one past the last class]", "--ignore-index"
        ),
    ] = None,
    classes: Annotated[
        str | None,
        _opt("Class names, comma-separated, or a classes.json/.txt file. [default: from the data root]", "--classes"),
    ] = None,
    cache: Annotated[
        bool | None, _opt("Keep decoded, resized images in memory. [default: when under 2 GB]", "--cache/--no-cache")
    ] = None,
    workers: Annotated[
        int | None,
        _opt("DataLoader worker processes (augmentation runs there). [default: one per spare core]", "--workers"),
    ] = None,
    amp: Annotated[bool | None, _opt("fp16 autocast on CUDA. [default: on]", "--amp/--no-amp")] = None,
    channels_last: Annotated[
        bool | None,
        _opt("channels_last memory format (faster on GPUs). [default: off]", "--channels-last/--no-channels-last"),
    ] = None,
    patience: Annotated[
        int | None,
        _opt("Stop after this many evaluations without a better val mIoU; 0 = never. [default: 0]", "--patience"),
    ] = None,
    eval_every: Annotated[int | None, _opt("Validate every N epochs. [default: 1]", "--eval-every")] = None,
    config: options.ConfigFile = None,
    device: options.Device = None,
    seed: options.Seed = None,
    threads: Annotated[
        int | None,
        _opt("CPU threads for torch; 0: the cores left beside the DataLoader workers. [default: 0]", "--threads"),
    ] = None,
    deterministic: options.Deterministic = False,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: options.Resume = None,
    quiet: options.Quiet = False,
) -> None:
    """Train a segmentation model; prints one JSON object (run_dir, best val mIoU) at the end."""
    from mltoolkit.core.config import build_config, load_config_file
    from mltoolkit.core.console import emit_json, set_quiet
    from mltoolkit.core.errors import DataError, UsageError
    from mltoolkit.core.io import read_json
    from mltoolkit.core.runs import resolve_run_dir
    from mltoolkit.segment.config import SegmentConfig
    from mltoolkit.segment.training import train

    set_quiet(quiet)
    if data_arg is not None and data is not None and data_arg != data:
        raise UsageError("give the data root once: as DATA or as --data")
    scale_pair = None
    if scale is not None:
        try:
            scale_pair = tuple(float(v) for v in scale.split(","))
        except ValueError:
            raise DataError(f"--scale {scale!r}: expected MIN,MAX such as 0.75,1.5") from None
        if len(scale_pair) != 2:
            raise DataError(f"--scale {scale!r}: expected MIN,MAX such as 0.75,1.5")
    flags = {
        "data": str(data or data_arg) if (data or data_arg) else None,
        "model": model,
        "weights": weights,
        "weights_backbone": weights_backbone,
        "size": size,
        "scale": scale_pair,
        "epochs": epochs,
        "time_budget": time_budget,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "lr": lr,
        "weight_decay": weight_decay,
        "schedule": schedule,
        "warmup_epochs": warmup_epochs,
        "loss": loss,
        "class_weights": class_weights,
        "aux_loss": aux_loss,
        "bn_momentum": bn_momentum,
        "ignore_index": ignore_index,
        "classes": classes,
        "cache": cache,
        "workers": workers,
        "amp": amp,
        "channels_last": channels_last,
        "patience": patience,
        "eval_every": eval_every,
        "device": device,
        "seed": seed,
        "threads": threads,
        "deterministic": deterministic or None,
    }
    saved = read_json(resolve_run_dir(resume, runs_dir, "segment") / "config.json") if resume else None
    if saved is not None and time_budget is None and epochs is not None:
        saved["time_budget"] = None  # more epochs asked on resume: the old budget no longer applies
    cfg = build_config(SegmentConfig, saved, load_config_file(config) if config else None, flags, source="option")
    if not cfg.data:
        raise UsageError("no data: pass DATA or --data DIR")
    result = train(cfg, runs_dir=runs_dir, name=name, resume=resume)
    if result is not None:  # None: a process other than rank 0 under torchrun
        emit_json(result)


@app.command("evaluate")
def evaluate_command(
    run: options.RunRef,
    data: Annotated[Path | None, _opt("Data root. [default: the one the run trained on]", "--data")] = None,
    split: Annotated[str, _opt("Split to score: val or test (or train).", "--split")] = "val",
    batch_size: Annotated[int | None, _opt("Images per forward pass. [default: the run's]", "--batch-size")] = None,
    device: options.Device = None,
    threads: options.Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    fmt: options.ResultFormat = "auto",
    quiet: options.Quiet = False,
) -> None:
    """Pixel accuracy, mean IoU, per-class IoU and confusion matrix over a split; writes eval.json."""

    from mltoolkit.core.console import emit_json, print_result, set_quiet, wants_json
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
    rows = [
        {"truth": name, **dict(zip(result["classes"], row))}
        for name, row in zip(result["classes"], result["confusion_matrix"])
    ]
    print_result(rows, fmt, title="confusion matrix (pixels; rows truth, columns prediction)")


@app.command("predict")
def predict_command(
    run: options.RunRef,
    sources: Annotated[list[str], typer.Argument(help="Image files, folders, or - to read paths from stdin.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the masks (<stem>.png, palette PNG).")],
    overlay: Annotated[
        bool, _opt("Also write <stem>_overlay.png: class colours blended over the image.", "--overlay")
    ] = False,
    batch_size: Annotated[int | None, _opt("Images per forward pass. [default: the run's]", "--batch-size")] = None,
    device: options.Device = None,
    threads: options.Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    quiet: options.Quiet = False,
) -> None:
    """Write one mask PNG per image (same size as the image); print one JSON line per image."""
    from mltoolkit.core.console import emit_json, set_quiet
    from mltoolkit.segment.prediction import predict

    set_quiet(quiet)
    for record in predict(
        run,
        sources,
        output,
        overlay=overlay,
        runs_dir=runs_dir,
        device=device or "auto",
        threads=threads,
        batch_size=batch_size,
    ):
        emit_json(record)
