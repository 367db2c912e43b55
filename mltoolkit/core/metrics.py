"""The confusion matrix of the image techniques: transfer's over images, segment's over pixels.

As torchvision's segmentation reference ``ConfusionMatrix``: accuracy and IoU come from the matrix
accumulated over a whole split, not from averages of per-image scores. Classes absent from both truth
and prediction have no IoU (null) and are left out of the mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class ConfusionMatrix:
    """``matrix[true, predicted]`` counts; targets equal to the ignore index are skipped."""

    def __init__(self, num_classes: int, ignore_index: int = -1) -> None:
        import torch

        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        import torch

        keep = (target >= 0) & (target < self.num_classes) & (target != self.ignore_index)
        index = self.num_classes * target[keep].long() + prediction[keep].long()
        self.matrix += torch.bincount(index.cpu(), minlength=self.num_classes**2).reshape(self.num_classes, -1)

    def compute(self, names: list[str] | None = None) -> dict[str, Any]:
        matrix = self.matrix.double()
        diagonal = matrix.diag()
        total = matrix.sum()
        union = matrix.sum(0) + matrix.sum(1) - diagonal
        iou = [float(d / u) if u > 0 else None for d, u in zip(diagonal, union)]
        present = [v for v in iou if v is not None]
        names = names or [str(i) for i in range(self.num_classes)]
        return {
            "pixel_accuracy": float(diagonal.sum() / total) if total > 0 else None,
            "miou": sum(present) / len(present) if present else None,
            "iou": dict(zip(names, iou)),
        }
