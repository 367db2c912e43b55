"""segment: the segmenter, raw uint8 RGB pixels (N, 3, H, W) at the training size in, per-pixel class
scores out (or, with ``--labels``, the argmax label map (N, H, W)).

A consumer resizes each image to the training size (bilinear); the scaling and normalisation are in
the graph. ``mltk segment predict`` then upsamples the scores to the image's own size before the argmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.errors import DataError
from mltoolkit.export.neural import TorchSource
from mltoolkit.export.runtime import OnnxFunction, open_export
from mltoolkit.segment.data import resized_pixels
from mltoolkit.techniques import SEGMENT

SAMPLE = 4  # real validation images for the parity check


def load(run_dir: Path) -> Any:
    """The run's torch model from ``best.pt``, on the CPU (where the exporter traces it)."""
    from mltoolkit import segment

    best = run_dir / "checkpoints" / "best.pt"
    if not best.is_file():
        raise DataError(f"{run_dir}: no checkpoints/best.pt (unfinished run); nothing to export yet")
    return segment.load(best, device="cpu").trained


def source(run_dir: Path) -> TorchSource:
    from mltoolkit.segment.config import parse_size

    trained = load(run_dir)
    size = parse_size(trained.config.size)
    real, notes = sample_images(trained.config.data, size, SAMPLE), []
    if not len(real):
        notes.append(f"training images not found at {trained.config.data}: parity checked on random pixels only")
    random = np.random.default_rng(0).integers(0, 256, (2, 3, *size), dtype=np.uint8)
    metadata = {
        "class_names": trained.classes.names,
        "class_colors": [list(c) for c in trained.classes.colors],
        "model": trained.config.model,
        "input_shape": ["batch", 3, *size],
        "input_layout": "uint8 RGB NCHW, 0-255, resized (bilinear) to the training size",
        "normalization": {"scale": 1 / 255, "mean": list(trained.mean), "std": list(trained.std), "inside_graph": True},
        "output": "class scores (batch, classes, H, W); with --labels the argmax labels (batch, H, W)",
    }
    return TorchSource(
        trained.model, "pixels", "scores", real, random, metadata, trained.mean, trained.std, "out", notes
    )


def sample_images(data: str | None, size: tuple[int, int], count: int) -> np.ndarray:
    """Up to ``count`` validation (else training) images of the run's data, in the exported layout."""
    from mltoolkit.core.images import open_image
    from mltoolkit.segment.data import find_layout, list_pairs

    if not data or not Path(data).is_dir():
        return np.empty((0,), np.uint8)
    try:
        layout = find_layout(data)
        pairs = list_pairs(layout, "val" if "val" in layout.splits else "train")[:count]
    except DataError:
        return np.empty((0,), np.uint8)
    return np.stack([resized_pixels(open_image(image), size) for image, _ in pairs])


@dataclass
class OnnxSegmenter:
    """What ``segment.load``'s predictor reads from a ``Trained`` (``scores``, ``config``, ``classes``,
    ``run_dir``), run by ONNX Runtime: class scores at the training size."""

    function: OnnxFunction
    size: tuple[int, int]  # (height, width) the graph takes
    config: Any  # the run's SegmentConfig
    classes: Any  # segment.data.Classes, from the file's metadata
    run_dir: Path

    def scores(self, images: list[Any]) -> Any:
        """PIL images -> float scores (N, classes, H, W) as a torch tensor, like ``Trained.scores``."""
        import torch

        return torch.from_numpy(self.function(np.stack([resized_pixels(image, self.size) for image in images])))


def onnx_segmenter(run: str | Path, runs_dir: str | Path = "runs", threads: int | None = None) -> OnnxSegmenter:
    """The newest ONNX export of class scores (not ``--labels``: predict upsamples scores before the argmax)."""
    from mltoolkit.core.io import read_json
    from mltoolkit.segment.data import Classes
    from mltoolkit.segment.inference import saved_config

    run_dir, function = open_export(run, runs_dir, SEGMENT.name, threads)
    meta = function.metadata
    _, _, height, width = meta["input_shape"]
    classes = Classes(meta["class_names"], [tuple(c) for c in meta["class_colors"]])
    config = saved_config(read_json(run_dir / "config.json"))
    return OnnxSegmenter(function, (int(height), int(width)), config, classes, run_dir)
