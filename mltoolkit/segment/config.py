"""The hyperparameters of a segmentation run, with the defaults that work on a small CPU.

Everything here is written whole to the run's ``config.json``; ``evaluate`` and ``predict`` rebuild
the model from it (plus the class names and colours found in the data), so they need nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mltoolkit.core.errors import DataError

# torchvision's segmentation models and the classification backbone each one is built on.
MODELS = {
    "lraspp_mobilenet_v3_large": "mobilenet_v3_large",
    "deeplabv3_mobilenet_v3_large": "mobilenet_v3_large",
    "deeplabv3_resnet50": "resnet50",
    "deeplabv3_resnet101": "resnet101",
    "fcn_resnet50": "resnet50",
    "fcn_resnet101": "resnet101",
}
SLOW_ON_CPU = ("resnet50", "resnet101")  # ~0.5 images/s at 256x256 on 2 cores: warn on CPU

Loss = Literal["ce", "dice", "ce+dice"]
Optimizer = Literal["adamw", "sgd"]
Schedule = Literal["poly", "cosine", "step", "onecycle", "constant"]


@dataclass
class SegmentConfig:
    """Training options; CLI flags, ``--config`` files and presets all land here."""

    data: str = ""
    model: str = "lraspp_mobilenet_v3_large"
    weights: str | None = None  # full segmentation weights: none, DEFAULT, an enum name or a file
    weights_backbone: str | None = None  # ImageNet backbone weights: none, DEFAULT, an enum name or a file
    size: str = "360x480"  # training resolution HxW; validation resizes to it as well
    scale: tuple[float, float] = (1.0, 1.0)  # random rescale range before the random crop; off for short runs
    epochs: int | None = None  # None: 30, or as many as the time budget allows
    time_budget: float | None = None  # minutes of wall clock for the whole train command
    batch_size: int = 8
    optimizer: Optimizer = "adamw"
    lr: float | None = None  # None: 5e-3 for AdamW, 0.02 for SGD
    weight_decay: float | None = None  # None: 1e-2 for AdamW, 1e-4 for SGD
    momentum: float = 0.9
    schedule: Schedule = "poly"
    warmup_epochs: float = 1.0
    loss: Loss = "ce"
    class_weights: str = "auto"  # none | auto (sqrt of median-frequency balancing) | comma-separated list
    aux_loss: bool | None = None  # None: on for FCN/DeepLab (weight 0.5), lraspp has no aux head
    bn_momentum: float = 0.1  # torchvision's MobileNetV3 uses 0.01, which collapsed short runs in eval mode
    ignore_index: int | None = None  # None: 255, or one past the last class in the SegNet/CamVid layout
    classes: str | None = None  # comma-separated names or a classes file; default: classes.json/.txt in the data
    cache: bool | None = None  # None: keep decoded, resized images in memory when they fit in 2 GB
    workers: int | None = None  # None: one per spare core (augmentation runs beside the training step)
    amp: bool = True  # fp16 autocast on CUDA only
    channels_last: bool = False
    patience: int = 0  # early stopping on val mIoU (0 = off)
    eval_every: int = 1
    device: str = "auto"
    seed: int = 0
    threads: int = 0
    deterministic: bool = False


def parse_size(text: str) -> tuple[int, int]:
    """``"360x480"`` (HxW) or ``"256"`` (square) to ``(height, width)``."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[x,]\s*(\d+))?\s*", str(text))
    if not match:
        raise DataError(f"--size {text!r}: expected HxW such as 360x480, or one number for a square")
    height = int(match.group(1))
    width = int(match.group(2) or height)
    if height < 16 or width < 16:
        raise DataError(f"--size {text}: at least 16x16 (the models downsample 8 to 32 times)")
    return height, width


def check_config(config: SegmentConfig) -> None:
    """Reject values that would only fail later, deep inside torch."""
    if config.model not in MODELS:
        raise DataError(f"unknown --model {config.model!r}; expected one of {', '.join(MODELS)}")
    parse_size(config.size)
    low, high = config.scale
    if not 0 < low <= high:
        raise DataError(f"scale {config.scale}: expected 0 < min <= max")
    if config.batch_size < 2:
        raise DataError("--batch-size must be at least 2 (BatchNorm needs two images per batch)")
    for name in ("epochs", "time_budget", "lr", "weight_decay"):
        value = getattr(config, name)
        if value is not None and value <= 0 and not (name == "weight_decay" and value == 0):
            raise DataError(f"--{name.replace('_', '-')} must be positive (got {value})")
    if config.aux_loss and config.model.startswith("lraspp"):
        raise DataError("--aux-loss: lraspp_mobilenet_v3_large has no auxiliary head")


def resolved_lr(config: SegmentConfig) -> float:
    return config.lr if config.lr is not None else (5e-3 if config.optimizer == "adamw" else 0.02)


def resolved_weight_decay(config: SegmentConfig) -> float:
    if config.weight_decay is not None:
        return config.weight_decay
    return 1e-2 if config.optimizer == "adamw" else 1e-4
