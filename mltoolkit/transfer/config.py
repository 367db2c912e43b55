"""The hyperparameters of a transfer-learning run: each field is also a ``train`` option, with its help and range.

With pretrained weights the defaults follow PyTorch's transfer-learning tutorial (resnet18, SGD lr
0.001 momentum 0.9, StepLR step 7 gamma 0.1, batch 4... except the batch: 32 keeps a CPU busy and
BatchNorm statistics sane), at the weights' own 224 px. That recipe barely moves random weights, so
with ``--weights none`` the defaults left open (``None`` below) take the from-scratch recipe of
``tests/test_transfer_learning.py`` instead: AdamW lr 0.002 under a one-cycle schedule, no augmentation,
at the images' own size. Everything lands resolved in the run's config.json, so a run can be repeated
from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mltoolkit.core.engine import MACHINE, RECIPE, EngineOptions
from mltoolkit.core.params import param

Mode = Literal["finetune", "feature-extract"]
Augment = Literal["auto", "none", "basic", "strong"]
Optimizer = Literal["sgd", "adamw"]
Schedule = Literal["step", "cosine", "onecycle", "poly", "constant"]

# what the defaults left open become: from random weights, or from pretrained ones
FROM_SCRATCH = {"optimizer": "adamw", "lr": 0.002, "schedule": "onecycle"}
PRETRAINED = {"optimizer": "sgd", "lr": 0.001, "schedule": "step"}


@dataclass
class TransferConfig(EngineOptions):
    data: str = param(
        "",
        "Image folder: DIR/train/<class>/* + DIR/val/<class>/*, or DIR/<class>/* (split by --val-fraction).",
        path=True,
    )
    model: str = param("resnet18", "torchvision classifier (`mltk transfer models`).", short="-m")
    weights: str = param(
        "DEFAULT",
        "DEFAULT, a torchvision weights name (IMAGENET1K_V1), none (random init: the from-scratch recipe), "
        "or PATH.pth (a state dict).",
    )
    mode: Mode = param(
        "finetune", "finetune (all layers train) or feature-extract (frozen, cached backbone; new head only)."
    )
    epochs: int | None = param(
        None, "Training epochs.", ge=1, default_text="25, or as many as --time-budget allows", panel=RECIPE
    )
    batch_size: int = param(32, "Images per batch (per process under torchrun).", ge=1, short="-b", panel=RECIPE)
    optimizer: Optimizer | None = param(
        None, "sgd (with momentum) or adamw.", default_text="sgd; adamw with --weights none", panel=RECIPE
    )
    lr: float | None = param(
        None,
        "Learning rate (the peak, for onecycle).",
        gt=0,
        default_text="0.001; 0.002 with --weights none",
        panel=RECIPE,
    )
    weight_decay: float = param(0.0, "Weight decay.", ge=0, panel=RECIPE)
    schedule: Schedule | None = param(
        None,
        "step, cosine, onecycle, poly or constant, stepped per batch.",
        default_text="step; onecycle with --weights none",
        panel=RECIPE,
    )
    warmup_epochs: float = param(0.0, "Linear warmup length in epochs (fractions allowed).", ge=0, panel=RECIPE)
    step_size: int = param(7, "step schedule: epochs between decays.", ge=1, panel=RECIPE)
    gamma: float = param(0.1, "step schedule: decay factor.", gt=0, le=1, panel=RECIPE)
    label_smoothing: float = param(0.0, "Label smoothing of the loss.", ge=0, lt=1, panel=RECIPE)
    balance: bool = param(False, "Draw classes equally often (weighted sampler).", panel=RECIPE)
    augment: Augment = param(
        "auto",
        "none, basic (RandomResizedCrop + flip), strong (+ TrivialAugment, RandomErasing) or auto "
        "(basic when fine-tuning pretrained weights; none when feature-extracting or with --weights none).",
        panel=RECIPE,
    )
    views: int = param(
        4, "feature-extract with --augment basic|strong: augmented views cached per image.", ge=1, panel=RECIPE
    )
    image_size: int | None = param(
        None,
        "Input crop size in pixels (the resize scales with it).",
        ge=16,
        default_text="the weights' own, 224 for most; with --weights none the images' own size, not upscaled",
        panel=RECIPE,
    )
    val_fraction: float = param(0.2, "Share held out for validation when DATA has no val/ folder.", gt=0, lt=1)
    strict: bool = param(False, "An unreadable image is an error (exit 3), not a skip.")
    channels_last: bool = param(True, "channels_last memory on CUDA.", panel=MACHINE)

    def __post_init__(self) -> None:
        """Fill the defaults left open with the recipe for these weights (see the module docstring)."""
        recipe = FROM_SCRATCH if self.from_scratch else PRETRAINED
        for key, value in recipe.items():
            if getattr(self, key) is None:
                setattr(self, key, value)

    @property
    def from_scratch(self) -> bool:
        return self.weights.lower() == "none"

    def resolved_augment(self) -> str:
        """``auto``: augment when fine-tuning pretrained weights; from random weights the tutorial's
        RandomResizedCrop (down to 8% of the image) hides more than it teaches, and feature-extract caches
        plain features."""
        if self.augment != "auto":
            return self.augment
        return "basic" if self.mode == "finetune" and not self.from_scratch else "none"
