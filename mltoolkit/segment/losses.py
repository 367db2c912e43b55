"""Per-pixel losses: cross-entropy (optionally class-weighted), soft Dice, or their sum.

Rare classes (poles, signs, cyclists in road scenes) cover a fraction of a percent of the pixels;
plain cross-entropy all but ignores them and mean IoU pays for it. Class weights from the training
masks' pixel counts, or a Dice term (which scores each class on its own), pull them back in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mltoolkit.core.errors import DataError

if TYPE_CHECKING:
    import torch


def class_weights(spec: str, counts: np.ndarray) -> list[float] | None:
    """``none``; ``auto``: sqrt of median-frequency balancing, clipped to [0.2, 5]; or one weight per class."""
    spec = spec.strip().lower()
    if spec == "none":
        return None
    if spec == "auto":
        frequency = counts / max(1, counts.sum())
        median = float(np.median(frequency[frequency > 0])) if (frequency > 0).any() else 1.0
        weights = np.where(frequency > 0, np.sqrt(median / np.maximum(frequency, 1e-12)), 1.0)
        return [float(w) for w in np.clip(weights, 0.2, 5.0)]
    try:
        weights = [float(w) for w in spec.split(",")]
    except ValueError:
        raise DataError(f"--class-weights {spec!r}: expected none, auto or comma-separated numbers") from None
    if len(weights) != len(counts):
        raise DataError(f"--class-weights: {len(weights)} weights given for {len(counts)} classes")
    if any(w < 0 for w in weights):
        raise DataError("--class-weights: weights must not be negative")
    return weights


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """1 - soft Dice, averaged over the classes present in the batch's truth or prediction."""
    import torch

    num_classes = logits.shape[1]
    valid = target != ignore_index
    probs = logits.float().softmax(1) * valid.unsqueeze(1)
    onehot = torch.nn.functional.one_hot(target.clamp(0, num_classes - 1) * valid, num_classes)
    onehot = onehot.permute(0, 3, 1, 2).to(probs.dtype) * valid.unsqueeze(1)
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)
    cardinality = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * intersection + 1.0) / (cardinality + 1.0)
    present = onehot.sum(dims) > 0
    return 1 - (dice[present].mean() if present.any() else dice.mean())


class SegmentationLoss:
    """``ce``, ``dice`` or ``ce+dice`` on the main output, plus 0.5x the same on the auxiliary head."""

    def __init__(self, kind: str, ignore_index: int, weights: torch.Tensor | None) -> None:
        self.kind, self.ignore_index, self.weights = kind, ignore_index, weights

    def single(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        loss = 0.0
        if "ce" in self.kind:
            loss = F.cross_entropy(logits, target, weight=self.weights, ignore_index=self.ignore_index)
        if "dice" in self.kind:
            loss = loss + dice_loss(logits, target, self.ignore_index)
        return loss  # type: ignore[return-value]

    def __call__(self, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        loss = self.single(outputs["out"], target)
        if "aux" in outputs:
            loss = loss + 0.5 * self.single(outputs["aux"], target)
        return loss
