"""Segmentation training: torchvision's segmentation reference as a core.engine task.

Per epoch (core.engine's loop): train on random crops, then the confusion matrix over the validation split at the
training resolution; ``best.pt`` by val mIoU. The learning rate warms up linearly and then decays as torchvision's
``poly``, stepped per iteration; with ``--time-budget`` the engine re-plans the steps after each epoch so the decay
still ends at zero when the budget runs out. What is segmentation's own: reading and checking the data (classes,
ignore index, every mask), the model, the loss, the metrics and the example plots.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.checkpoint import load_checkpoint
from mltoolkit.core.console import info, warn
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.distributed import World, launched_world, plan_cores
from mltoolkit.core.engine import Task, run_task, session
from mltoolkit.core.errors import DataError
from mltoolkit.core.metrics import ConfusionMatrix
from mltoolkit.core.plots import plot_curves
from mltoolkit.core.runs import Run, run_name
from mltoolkit.segment.config import MODELS, SLOW_ON_CPU, SegmentConfig, check_config, parse_size
from mltoolkit.segment.data import (
    DEFAULT_IGNORE,
    Classes,
    Layout,
    PairDataset,
    Split,
    base_size,
    binary_classes,
    cache_fits,
    default_colors,
    find_layout,
    list_pairs,
    load_split,
    mask_values,
    resolve_classes,
)
from mltoolkit.segment.losses import SegmentationLoss, class_weights
from mltoolkit.segment.model import build_model, normalization
from mltoolkit.techniques import SEGMENT

if TYPE_CHECKING:
    import torch


def prepare_classes(
    layout: Layout, config: SegmentConfig, train_pairs: list[tuple[Path, Path]], threads: int
) -> tuple[Classes, int]:
    """Class names/colours and the ignore index: from --classes, the data's classes file, or the masks."""
    classes = resolve_classes(layout.root, config.classes)
    ignore = config.ignore_index
    if ignore is None:  # SegNet's CamVid marks unlabelled pixels with the value after the last class
        ignore = len(classes) if layout.kind == "segnet" and classes is not None else DEFAULT_IGNORE
    values = mask_values(train_pairs, classes, ignore, threads)
    binary = binary_classes(values, classes, ignore)
    if binary is not None:
        warn(
            f"the training masks hold only the values 0 and 255: read as two classes, {binary.names[0]} (0) and "
            f"{binary.names[1]} (255), not as one class and the ignore index {ignore}"
        )
        return binary, ignore
    if classes is None:
        count = max((v for v in values if v != ignore), default=0) + 1
        classes = Classes([f"class_{i}" for i in range(count)], default_colors(count))
        info(f"no classes file in {layout.root}: {count} classes inferred from the training masks")
    if len(classes) < 2:
        raise DataError(f"{layout.root}: segmentation needs at least 2 classes, found {len(classes)}")
    return classes, ignore


def check_labels(split: Split, classes: Classes, ignore: int) -> None:
    """Refuse classes no training pixel is labelled with (the run could not learn them, and their IoU would
    not count), and warn when most pixels are the ignore index: both usually mean a wrong --ignore-index or
    class list."""
    empty = [f"{name} ({index})" for index, (name, count) in enumerate(zip(classes.names, split.counts)) if not count]
    if empty:
        raise DataError(
            f"no training pixel is labelled as class{'es' if len(empty) > 1 else ''} {', '.join(empty[:5])}"
            f"{' ...' if len(empty) > 5 else ''} (pixels equal to the ignore index {ignore} are not labelled); "
            "check --classes and --ignore-index"
        )
    ignored = 1 - split.counts.sum() / max(1, split.pixels)
    if ignored > 0.5:
        warn(f"{ignored:.0%} of the training pixels are the ignore index {ignore} and will not be learned from")


def resolve(config: SegmentConfig, layout: Layout, ignore: int, train_pairs: int) -> SegmentConfig:
    """Fill in the defaults that depend on the data, for config.json (``workers`` is by now a count, not None)."""
    cache = config.cache
    if cache is None:
        cache = cache_fits(train_pairs, base_size(parse_size(config.size), config.scale), copies=config.workers)
    return replace(config, data=str(layout.root), ignore_index=ignore, cache=cache)


@dataclass
class Data:
    """The splits, classes and ignore index a run trains on, and its config with every default filled in."""

    config: SegmentConfig
    layout: Layout
    classes: Classes
    ignore: int
    train_split: Split
    val_split: Split


def train(
    config: SegmentConfig, *, runs_dir: str | Path = "runs", name: str | None = None, resume: str | None = None
) -> TrainResult:
    """Train a segmentation model and write a run directory; every torchrun process returns rank 0's result."""
    import time

    started = time.monotonic()
    world = launched_world()
    check_config(config)
    threads, workers = plan_cores(config.threads, config.workers, world)
    config = replace(config, workers=workers)  # recorded: the cache's size depends on it
    with session(world, config) as device:
        data = read_data(config, threads + workers)
        if MODELS[data.config.model] in SLOW_ON_CPU and device.type == "cpu":
            warn(f"{config.model} trains at about 0.5 images/s at 256x256 on 2 CPU cores; lraspp_mobilenet_v3_large ~8")
        task = SegmentTask(data, world, device, pretrained=resume is None)
        return run_task(task, world, device, runs_dir=runs_dir, name=name or _default_name(data.config),
                        resume=resume, started=started)  # fmt: skip


def read_data(config: SegmentConfig, threads: int) -> Data:
    """Both splits read and checked (a val split held out of train when the data has none)."""
    layout = find_layout(config.data)
    train_pairs = list_pairs(layout, "train")
    val_pairs = list_pairs(layout, "val") if "val" in layout.splits else None
    if val_pairs is None:  # hold out every tenth image, so best.pt and early stopping have something to watch
        val_pairs, train_pairs = train_pairs[::10], [p for i, p in enumerate(train_pairs) if i % 10]
        warn(f"{layout.root}: no val split; holding out {len(val_pairs)} training images for validation")
    classes, ignore = prepare_classes(layout, config, train_pairs, threads)
    config = resolve(config, layout, ignore, len(train_pairs))
    info(
        f"reading {len(train_pairs)} training and {len(val_pairs)} validation pairs from {layout.root} ({layout.kind})"
    )
    train_split = load_split(train_pairs, classes, len(classes), ignore, threads)
    check_labels(train_split, classes, ignore)
    val_split = load_split(val_pairs, classes, len(classes), ignore, threads)
    if len(train_pairs) < config.batch_size:
        raise DataError(
            f"{layout.root}: {len(train_pairs)} training images, fewer than --batch-size {config.batch_size}"
        )
    return Data(config, layout, classes, ignore, train_split, val_split)


class SegmentTask(Task):
    """What segmentation gives the engine (core.engine): the model, the loaders of random crops (drop_last: a batch
    of one breaks BatchNorm) and of the validation split at the training resolution, the loss, the confusion-matrix
    metrics, and what checkpoints hold for predict (classes, colours, normalisation)."""

    technique, monitor, headline, default_epochs = SEGMENT.name, "miou", "val_miou", 30

    def __init__(self, data: Data, world: World, device: torch.device, *, pretrained: bool) -> None:
        import torch

        super().__init__(data.config, device)
        config, classes, self.data = data.config, data.classes, data
        self.size, (self.mean, self.std) = parse_size(config.size), normalization(config)
        common = (classes, self.size, self.mean, self.std, data.ignore)
        train_set = PairDataset(data.train_split, *common, train=True, scale=config.scale, cache=config.cache)
        val_set = PairDataset(data.val_split, *common, train=False, cache=config.cache)
        options = {"batch_size": config.batch_size, "workers": config.workers, "device": device}
        self.set_loaders(train_set, val_set, world, drop_last=True, **options)
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = build_model(config, len(classes), pretrained=pretrained).to(device, memory_format=memory)
        weights = class_weights(config.class_weights, data.train_split.counts)
        weights = torch.tensor(weights, device=device) if weights is not None else None
        self.criterion = SegmentationLoss(config.loss, data.ignore, weights)
        self.description = (
            f"{config.model} on {device} ({len(classes)} classes, {config.size}, batch {config.batch_size}"
            + (f", time budget {config.time_budget:g} min)" if config.time_budget else f", {self.epochs} epochs)")
        )

    def loss(self, outputs: dict[str, torch.Tensor], masks: torch.Tensor) -> torch.Tensor:
        return self.criterion(outputs, masks)

    def val_sums(self, outputs: dict[str, torch.Tensor], masks: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch

        logits = outputs["out"].float()
        matrix = ConfusionMatrix(len(self.data.classes), self.data.ignore)
        matrix.update(masks, logits.argmax(1))
        loss = float(self.criterion.single(logits, masks)) * len(masks)
        return {"loss": torch.tensor([loss, len(masks)], dtype=torch.float64), "confusion": matrix.matrix}

    def val_metrics(self, sums: dict[str, torch.Tensor]) -> dict[str, Any]:
        matrix = ConfusionMatrix(len(self.data.classes), self.data.ignore)
        loss, count = sums["loss"].tolist() if sums else (0.0, 0.0)
        if sums:
            matrix.matrix = sums["confusion"]
        metrics = matrix.compute()
        return {"val_loss": loss / max(1, count), "pixel_accuracy": metrics["pixel_accuracy"], "miou": metrics["miou"]}

    def inference_state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "num_classes": len(self.data.classes)}

    def checkpoint_config(self) -> dict[str, Any]:
        """The whole config plus what predict needs to read images: classes and normalisation."""
        classes = self.data.classes
        return {
            **super().checkpoint_config(),
            "class_names": classes.names,
            "class_colors": [list(c) for c in classes.colors],
            "class_values": classes.values,
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": self.data.layout.kind,
        }

    def plot(self, run: Run, records: list[dict[str, Any]]) -> None:
        """Learning curves and a few validation images with the best model's masks, in plots/."""
        import torch

        from mltoolkit.segment.visual import plot_examples

        config, data = self.config, self.data
        curves = [("train_loss", "val_loss"), ("miou", "pixel_accuracy")]
        title = f"{config.model} on {Path(config.data).name}"
        plot_curves(run.plots / "curves.png", records, "epoch", curves, title=title)
        best = run.checkpoints / "best.pt"
        if best.exists():
            self.model.load_state_dict(load_checkpoint(best, SEGMENT.name)["state"]["model"])
        self.model.eval()
        examples = []
        dataset = PairDataset(data.val_split, data.classes, self.size, self.mean, self.std, data.ignore, train=False)
        mean, std = torch.tensor(self.mean).view(3, 1, 1), torch.tensor(self.std).view(3, 1, 1)
        with torch.inference_mode():
            for index in sorted({round(i * (len(dataset) - 1) / 3) for i in range(4)}):
                image, mask = dataset[index]
                logits = self.model(image[None].to(self.device))["out"]
                shown = (image * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
                examples.append((shown, mask.numpy(), logits.argmax(1)[0].cpu().numpy()))
        if examples:
            plot_examples(run.plots / "val_examples.png", examples, data.classes.colors, data.ignore,
                          title="validation (best.pt)")  # fmt: skip


def _default_name(config: SegmentConfig) -> str:
    return run_name(Path(config.data).name, config.model.split("_")[0])
