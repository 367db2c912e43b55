"""``evaluate``: the confusion matrix of a trained model over a whole split, at full resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltoolkit.core.console import info
from mltoolkit.core.images import open_image
from mltoolkit.core.io import write_json
from mltoolkit.core.metrics import ConfusionMatrix
from mltoolkit.core.params import check_counts
from mltoolkit.segment.data import find_layout, list_pairs, load_split, read_mask
from mltoolkit.segment.inference import load_trained, predict_masks


def evaluate(
    run: str,
    data: str | Path | None = None,
    *,
    split: str = "val",
    runs_dir: str | Path = "runs",
    device: str = "auto",
    threads: int | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Pixel accuracy, mean IoU, per-class IoU and the confusion matrix (rows: truth, columns: prediction).

    Masks are predicted at the training resolution and upsampled to each image's size, then compared
    with the original mask; ``eval.json`` is written into the run (when ``run`` is a run).
    """
    import torch

    check_counts(batch_size=batch_size)
    trained = load_trained(run, runs_dir, device, threads)
    root = Path(data) if data is not None else Path(trained.config.data)
    layout = find_layout(root)
    pairs = list_pairs(layout, split)
    classes, ignore = trained.classes, trained.ignore_index
    load_split(pairs, classes, len(classes), ignore)  # every mask checked before the first prediction
    info(f"evaluating {trained.checkpoint} on {len(pairs)} {split} images of {root}")
    matrix = ConfusionMatrix(len(classes), ignore)
    images = (open_image(image) for image, _ in pairs)  # made RGB where they are resized
    for (_, mask_path), predicted in zip(pairs, predict_masks(trained, images, batch_size)):
        truth = read_mask(mask_path, classes, ignore)
        matrix.update(torch.from_numpy(truth), torch.from_numpy(predicted.astype("int64")))
    result = {"split": split, "data": str(root), "images": len(pairs), "checkpoint": str(trained.checkpoint)}
    result |= {**matrix.compute(classes.names), "confusion_matrix": matrix.matrix.tolist(), "classes": classes.names}
    if trained.run_dir is not None:
        write_json(trained.run_dir / "eval.json", result)
    return result
