"""A trained model back from its run (or checkpoint file), and full-resolution masks from it.

The checkpoint carries the whole config plus class names, colours and normalisation, so
``evaluate`` and ``predict`` need only the run. Images are resized to the training resolution,
and the class scores are upsampled (bilinear) back to each image's own size before the argmax, so
masks match their images pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mltoolkit.core.checkpoint import load_checkpoint, restore_model, run_checkpoint
from mltoolkit.core.device import resolve_device, set_threads
from mltoolkit.core.io import chunks
from mltoolkit.segment.config import SegmentConfig, parse_size
from mltoolkit.segment.data import Classes, normalize, resized_pixels
from mltoolkit.segment.model import build_model
from mltoolkit.techniques import SEGMENT

if TYPE_CHECKING:
    import torch
    from PIL import Image


class Scorer(Protocol):
    """What masks are made from: the torch model (``Trained``) or its ONNX export, both at the training size."""

    config: SegmentConfig

    def scores(self, images: list[Image.Image]) -> torch.Tensor: ...


@dataclass
class Trained:
    model: torch.nn.Module
    config: SegmentConfig
    classes: Classes
    ignore_index: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    run_dir: Path | None
    checkpoint: Path

    def scores(self, images: list[Image.Image]) -> torch.Tensor:
        """Class scores (N, classes, H, W) at the training size: each image resized (bilinear), scaled and
        normalised, as the ONNX export does inside its graph."""
        import torch

        size = parse_size(self.config.size)
        tensors = []
        for image in images:
            pixels = torch.from_numpy(resized_pixels(image, size)).float().div_(255)
            tensors.append(normalize(pixels, self.mean, self.std))
        with torch.inference_mode():
            return self.model(torch.stack(tensors).to(self.device))["out"].float()


def load_trained(ref: str, runs_dir: str | Path, device: str = "auto", threads: int | None = None) -> Trained:
    """``best.pt`` of a run (``last.pt`` if no epoch was evaluated), or the checkpoint file named."""
    set_threads(threads)
    path, run_dir = run_checkpoint(ref, runs_dir, SEGMENT.name)
    payload = load_checkpoint(path, SEGMENT.name)
    saved = payload["config"]
    config = saved_config(saved)
    classes = Classes(saved["class_names"], [tuple(c) for c in saved["class_colors"]], values=saved.get("class_values"))
    target = resolve_device(device)
    model = build_model(config, len(classes), pretrained=False)
    restore_model(model, payload["state"]["model"], path, target, config.model)
    normalization = tuple(saved["mean"]), tuple(saved["std"])
    return Trained(model, config, classes, int(saved["ignore_index"]), *normalization, target, run_dir, path)


def saved_config(saved: dict[str, Any]) -> SegmentConfig:
    """The ``SegmentConfig`` of a checkpoint's or config.json's dict (keys that are not fields left out)."""
    known = {f.name for f in fields(SegmentConfig)}
    return SegmentConfig(**{k: tuple(v) if k == "scale" else v for k, v in saved.items() if k in known})


def predict_masks(
    trained: Scorer, images: Iterable[Image.Image], batch_size: int | None = None
) -> Iterator[np.ndarray]:
    """Class-index masks (H, W) at each image's own size, batched at the training resolution."""
    for batch in chunks(images, batch_size if batch_size is not None else trained.config.batch_size):
        yield from _predict_batch(trained, batch)


def _predict_batch(trained: Scorer, images: list[Image.Image]) -> list[np.ndarray]:
    import torch
    import torch.nn.functional as F

    masks = []
    with torch.inference_mode():
        for scores, image in zip(trained.scores(images), images):
            full = F.interpolate(scores[None], size=(image.height, image.width), mode="bilinear", align_corners=False)
            masks.append(full.argmax(1)[0].to(torch.uint8).cpu().numpy())  # 8-bit masks: at most 256 classes
    return masks


def class_fractions(mask: np.ndarray, names: list[str]) -> dict[str, Any]:
    counts = np.bincount(mask.ravel(), minlength=len(names))[: len(names)]
    return {name: round(float(c) / mask.size, 6) for name, c in zip(names, counts)}
