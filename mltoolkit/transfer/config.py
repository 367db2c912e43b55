"""The hyperparameters of a transfer-learning run, with the tutorial's recipe as the defaults.

Defaults follow PyTorch's transfer-learning tutorial (resnet18, SGD lr 0.001 momentum 0.9, StepLR
step 7 gamma 0.1, batch 4... except the batch: 32 keeps a CPU busy and BatchNorm statistics sane).
Everything here lands in the run's config.json, so a run can be repeated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["finetune", "feature-extract"]
Augment = Literal["auto", "none", "basic", "strong"]
Optimizer = Literal["sgd", "adamw"]
Schedule = Literal["step", "cosine", "onecycle", "poly", "constant"]


@dataclass
class TransferConfig:
    data: str = ""
    model: str = "resnet18"
    weights: str = "DEFAULT"
    mode: Mode = "finetune"
    epochs: int = 25
    batch_size: int = 32
    optimizer: Optimizer = "sgd"
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Schedule = "step"
    warmup_epochs: float = 0.0
    step_size: int = 7
    gamma: float = 0.1
    label_smoothing: float = 0.0
    balance: bool = False
    patience: int = 0
    augment: Augment = "auto"
    views: int = 4
    image_size: int | None = None
    val_fraction: float = 0.2
    strict: bool = False
    amp: bool = True
    channels_last: bool = True
    workers: int | None = None
    threads: int | None = None
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False

    def resolved_augment(self) -> str:
        """``auto``: augment when fine-tuning; cache plain features when feature-extracting."""
        if self.augment != "auto":
            return self.augment
        return "basic" if self.mode == "finetune" else "none"
