"""transfer: the fine-tuned classifier, raw uint8 RGB pixels (N, 3, crop, crop) in, class logits out.

A consumer resizes the shorter side to ``resize_size`` and centre-crops ``crop_size`` (the metadata
says both); scaling to [0, 1] and the mean/std normalisation happen inside the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.errors import DataError
from mltoolkit.export.neural import TorchSource
from mltoolkit.export.runtime import OnnxFunction, open_export
from mltoolkit.techniques import TRANSFER

SAMPLE = 8  # real images for the parity check


def load(run_dir: Path) -> Any:
    """The run's torch classifier from ``best.pt``, on the CPU (where the exporter traces it)."""
    from mltoolkit import transfer

    best = run_dir / "checkpoints" / "best.pt"
    if not best.is_file():
        raise DataError(f"{run_dir}: no checkpoints/best.pt (unfinished run); nothing to export yet")
    return transfer.load(best, device="cpu").classifier


def pixel_transform(pre: Any) -> Any:
    """File -> uint8 (3, crop, crop): the technique's eval transform without ToTensor/Normalize."""
    from torchvision import transforms as T

    mode = T.InterpolationMode(pre.interpolation)
    return T.Compose([T.Resize(pre.resize_size, interpolation=mode), T.CenterCrop(pre.crop_size), T.PILToTensor()])


def source(run_dir: Path) -> TorchSource:
    clf = load(run_dir)
    pre, notes = clf.pre, []
    real = sample_images(clf.config.get("data"), pixel_transform(pre), SAMPLE)
    if not len(real):
        notes.append(f"training images not found at {clf.config.get('data')}: parity checked on random pixels only")
    random = np.random.default_rng(0).integers(0, 256, (4, 3, pre.crop_size, pre.crop_size), dtype=np.uint8)
    metadata = {
        "class_names": clf.classes,
        "model": clf.config.get("model"),
        "input_shape": ["batch", 3, pre.crop_size, pre.crop_size],
        "input_layout": "uint8 RGB NCHW, 0-255; resize the shorter side to resize_size, centre-crop crop_size",
        "resize_size": pre.resize_size,
        "crop_size": pre.crop_size,
        "interpolation": pre.interpolation,
        "normalization": {"scale": 1 / 255, "mean": pre.mean, "std": pre.std, "inside_graph": True},
        "output": "class logits (batch, classes); softmax gives the probabilities predict prints",
    }
    return TorchSource(clf.model, "pixels", "logits", real, random, metadata, pre.mean, pre.std, notes=notes)


def sample_images(data: str | None, transform: Any, count: int) -> np.ndarray:
    """Up to ``count`` images under the run's data folder (validation first), in the exported layout."""
    from mltoolkit.core.images import list_images, load_rgb

    root = Path(data) if data else None
    if root is None or not root.is_dir():
        return np.empty((0,), np.uint8)
    val = root / "val"
    paths = list_images(val if val.is_dir() else root)[:count]
    return np.stack([transform(load_rgb(str(p))).numpy() for p in paths]) if paths else np.empty((0,), np.uint8)


@dataclass
class OnnxClassifier:
    """What ``transfer.load``'s predictor reads from a ``Classifier`` (``transform``, ``logits``, ``classes``,
    ``pre``, ``config``, ``run_dir``), run by ONNX Runtime: the transform stops at uint8 pixels, since the
    graph scales and normalises them itself."""

    function: OnnxFunction
    classes: list[str]
    pre: Any  # transfer.data.Preprocessing, from the file's metadata
    config: dict[str, Any]
    run_dir: Path | None

    @property
    def transform(self) -> Any:
        """Image -> uint8 tensor (3, crop, crop), the graph's input."""
        return pixel_transform(self.pre)

    def logits(self, pixels: Any) -> Any:
        """A stacked uint8 batch (torch tensor) -> float logits as a torch tensor, like ``Classifier.logits``."""
        import torch

        return torch.from_numpy(self.function(np.ascontiguousarray(pixels.numpy())))


def onnx_classifier(run: str | Path, runs_dir: str | Path = "runs", threads: int | None = None) -> OnnxClassifier:
    """The run's newest ONNX export as a drop-in for ``transfer.classifier.load_classifier(run, runs_dir)``."""
    from mltoolkit.transfer.data import Preprocessing

    run_dir, function = open_export(run, runs_dir, TRANSFER.name, threads)
    meta = function.metadata
    norm = meta["normalization"]
    pre = Preprocessing(meta["crop_size"], meta["resize_size"], norm["mean"], norm["std"], meta["interpolation"])
    return OnnxClassifier(function, list(meta["class_names"]), pre, {"model": meta["model"]}, run_dir)
