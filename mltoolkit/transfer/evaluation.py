"""``evaluate()``: accuracy, top-k, per-class precision/recall/F1 and the confusion matrix of a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.console import info
from mltoolkit.core.errors import DataError
from mltoolkit.transfer.data import Sample

if TYPE_CHECKING:
    import torch


def evaluation_samples(data: str | None, classes: list[str], config: dict[str, Any]) -> tuple[str, list[Sample]]:
    """Which images to score: ``DATA/val`` if there is one, else the class tree ``DATA`` itself;
    without ``data``, the training run's own validation split."""
    from mltoolkit.transfer.data import find_splits, scan_class_tree

    if data is None:
        if not config.get("data"):
            raise DataError("this checkpoint records no data folder; pass --data DIR")
        splits = find_splits(config["data"], config.get("val_fraction", 0.2), config.get("seed", 0))
        if splits.classes != classes:
            raise DataError(f"{config['data']}: its classes changed since training; pass --data DIR")
        return f"{config['data']} (validation split)", splits.val
    root = Path(data).expanduser()
    folder = root / "val" if (root / "val").is_dir() else root
    return str(folder), scan_class_tree(folder, classes)[1]


def classification_metrics(
    logits: torch.Tensor, labels: torch.Tensor, classes: list[str], top_k: int
) -> dict[str, Any]:
    """Accuracy, top-k accuracy, per-class precision/recall/F1/support and the confusion matrix."""
    from mltoolkit.core.metrics import ConfusionMatrix

    predicted, k = logits.argmax(1), min(top_k, len(classes))
    top = logits.topk(k, dim=1).indices
    matrix = ConfusionMatrix(len(classes))
    matrix.update(labels, predicted)
    confusion = matrix.matrix
    true_pos = confusion.diag().double()
    precision = true_pos / confusion.sum(0).clamp(min=1)
    recall = true_pos / confusion.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    support = confusion.sum(1)
    present = support > 0
    return {
        "images": len(labels),
        "accuracy": float((predicted == labels).double().mean()),
        f"top{k}_accuracy": float((top == labels[:, None]).any(1).double().mean()),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(count)}
            for name, p, r, f, count in zip(classes, precision, recall, f1, support)
        },
        "confusion": {"labels": classes, "matrix": confusion.tolist()},
    }


def evaluate(
    run: str,
    data: str | None = None,
    *,
    runs_dir: str | Path = "runs",
    batch_size: int = 32,
    top_k: int = 5,
    errors: bool = False,
    device: str = "auto",
    threads: int | None = None,
    workers: int | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Score a run's best model on ``data`` (see ``evaluation_samples``); write eval.json and confusion.png."""
    import torch

    from mltoolkit.core.device import dataloader_workers, set_threads
    from mltoolkit.core.io import write_json
    from mltoolkit.core.params import check_counts
    from mltoolkit.core.plots import plot_confusion
    from mltoolkit.core.training import data_loader
    from mltoolkit.transfer.classifier import load_classifier
    from mltoolkit.transfer.data import DecodeFailures, ImageDataset, check_images, collate, eval_transform

    check_counts(top_k=top_k, batch_size=batch_size)
    set_threads(threads)
    clf = load_classifier(run, runs_dir, device)
    where, samples = evaluation_samples(data, clf.classes, clf.config)
    samples = check_images(samples, strict)
    if not samples:
        raise DataError(f"{where}: no readable images to evaluate")
    info(f"evaluating {clf.checkpoint} on {len(samples)} images from {where}")
    loader = data_loader(
        ImageDataset(samples, eval_transform(clf.pre)),
        batch_size=batch_size,
        workers=dataloader_workers(workers),
        device=clf.device,
        collate_fn=collate,
    )
    report, parts = DecodeFailures(samples, strict), []
    for images, batch_labels, batch_indices, bad in loader:
        if bad:
            report(bad)
        if len(batch_labels):
            parts.append((clf.logits(images), batch_labels, batch_indices))
    if not parts:
        raise DataError(f"{where}: no image could be decoded")
    logits, labels, indices = (torch.cat(column) for column in zip(*parts))
    result: dict[str, Any] = {"checkpoint": str(clf.checkpoint), "data": where}
    result.update(classification_metrics(logits, labels, clf.classes, top_k))
    if errors:
        probabilities = logits.softmax(1)
        confidence, predicted = probabilities.max(1)
        result["errors"] = [
            {
                "path": samples[int(indices[i])][0],
                "label": clf.classes[int(labels[i])],
                "predicted": clf.classes[int(predicted[i])],
                "probability": round(float(confidence[i]), 4),
            }
            for i in (predicted != labels).nonzero().flatten().tolist()
        ]
    if clf.run_dir is not None:
        write_json(clf.run_dir / "eval.json", result)
        plot_confusion(clf.run_dir / "plots" / "confusion.png", clf.classes, result["confusion"]["matrix"])
    return result
