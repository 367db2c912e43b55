"""The hyperparameters of a segmentation run, with the defaults that work on a small CPU.

Each field carries its help text and range (``core.params.param``): the ``train`` command's options
are generated from them. Everything here is written whole to the run's ``config.json``; ``evaluate``
and ``predict`` rebuild the model from it (plus the class names and colours found in the data), so
they need nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mltoolkit.core.engine import EngineOptions
from mltoolkit.core.errors import DataError
from mltoolkit.core.params import check_config as check_ranges
from mltoolkit.core.params import param

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


def parse_scale(text: str) -> tuple[float, float]:
    """``--scale 0.5,2`` to ``(0.5, 2.0)``."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise DataError(f"--scale {text!r}: expected MIN,MAX such as 0.75,1.5") from None
    return low, high


@dataclass
class SegmentConfig(EngineOptions):
    """Training options; CLI flags, ``--config`` files and presets all land here."""

    data: str = param(
        "",
        "Data root: split/images + split/masks folders (train, val, optional test) or the SegNet/CamVid layout "
        "train/ + trainannot/.",
        path=True,
    )
    model: str = param(
        "lraspp_mobilenet_v3_large",
        "lraspp_mobilenet_v3_large, deeplabv3_mobilenet_v3_large, deeplabv3_resnet50/101, fcn_resnet50/101 "
        "(ResNet models are ~15x slower on CPU).",
    )
    weights: str | None = param(
        None, "Whole-model weights: none, DEFAULT, an enum name, or a .pth file.", default_text="none"
    )
    weights_backbone: str | None = param(
        None, "ImageNet backbone weights: none, DEFAULT, an enum name, or a .pth file.", default_text="none"
    )
    size: str = param("360x480", "Training resolution HxW, or one number for a square (validation resizes to it).")
    scale: tuple[float, float] = param(
        (1.0, 1.0),
        "Random rescale range MIN,MAX before the random crop (0.5,2 for long runs; off for short ones).",
        gt=0,
        parse=parse_scale,
    )
    epochs: int | None = param(None, "Epochs.", ge=1, default_text="30, or as many as --time-budget allows")
    batch_size: int = param(8, "Images per batch (last incomplete batch dropped; BatchNorm needs two).", ge=2)
    optimizer: Optimizer = param("adamw", "Optimizer (sgd with --momentum).")
    lr: float | None = param(None, "Peak learning rate.", gt=0, default_text="5e-3 adamw, 0.02 sgd")
    weight_decay: float | None = param(None, "Weight decay.", ge=0, default_text="1e-2 adamw, 1e-4 sgd")
    schedule: Schedule = param("poly", "Learning-rate decay after the warmup (poly: torchvision's reference).")
    warmup_epochs: float = param(1.0, "Linear warmup epochs (0: none).", ge=0)
    loss: Loss = param("ce", "Per-pixel loss; dice and ce+dice (cross-entropy plus soft Dice) help rare classes.")
    class_weights: str = param(
        "auto", "none, auto (from training pixel counts) or one weight per class, comma-separated."
    )
    aux_loss: bool | None = param(
        None, "Auxiliary head loss (weight 0.5; lraspp has no such head).", default_text="on for FCN/DeepLab"
    )
    # torchvision's MobileNetV3 uses 0.01, which collapsed short runs in eval mode
    bn_momentum: float = param(
        0.1, "BatchNorm momentum: the weight of each batch in the running statistics.", gt=0, le=1
    )
    ignore_index: int | None = param(
        None,
        "Mask value of unlabelled pixels (masks hold 8-bit values).",
        ge=0,
        le=255,
        default_text="255; SegNet layout: one past the last class",
    )
    classes: str | None = param(
        None, "Class names, comma-separated, or a classes.json/.txt file.", default_text="from the data root"
    )
    cache: bool | None = param(None, "Keep decoded, resized images in memory.", default_text="when under 2 GB")
    channels_last: bool = param(False, "channels_last memory format (faster on GPUs).")

    def __post_init__(self) -> None:
        """Fill the defaults left open (``None`` above) from the optimizer and the model, so config.json records
        what ran: torchvision's recipes for lr and weight decay, the auxiliary head wherever the model has one."""
        adamw = self.optimizer == "adamw"
        self.lr = self.lr if self.lr is not None else (5e-3 if adamw else 0.02)
        self.weight_decay = self.weight_decay if self.weight_decay is not None else (1e-2 if adamw else 1e-4)
        self.aux_loss = self.aux_loss if self.aux_loss is not None else not self.model.startswith("lraspp")


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
    """Every field in its range, then what a range cannot say: values that would only fail later, deep inside torch."""
    check_ranges(config)
    if config.model not in MODELS:
        raise DataError(f"unknown --model {config.model!r}; expected one of {', '.join(MODELS)}")
    parse_size(config.size)
    if len(config.scale) != 2 or config.scale[0] > config.scale[1]:
        raise DataError(f"--scale {','.join(map(str, config.scale))}: expected MIN,MAX with MIN <= MAX")
    if config.aux_loss and config.model.startswith("lraspp"):
        raise DataError("--aux-loss: lraspp_mobilenet_v3_large has no auxiliary head")
