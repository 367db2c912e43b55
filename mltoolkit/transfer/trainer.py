"""``train()``: fine-tune a torchvision classifier, or train a new head on cached frozen features.

The recipe is the tutorial's ``train_model`` (train an epoch, score the validation set, keep the best weights by
validation accuracy), run by core.engine, which owns the loop, checkpoints, resume, AMP, torchrun and the summary.
What is transfer's own: the image folder, the model and its head, and the two modes as engine tasks; in
feature-extract mode the frozen backbone's features are cached, so that epochs after the first cost only the head
(the tutorial recomputes the backbone every epoch).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.contract import TrainResult
from mltoolkit.core.distributed import World, launched_world, on_main, plan_cores
from mltoolkit.core.engine import Task
from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.runs import Run, run_name
from mltoolkit.techniques import TRANSFER
from mltoolkit.transfer.config import TransferConfig
from mltoolkit.transfer.data import Preprocessing, Sample

if TYPE_CHECKING:
    import torch


def check_config(cfg: TransferConfig, world: World) -> None:
    """What the fields' ranges and torchrun cannot take, refused on every process before anything is loaded."""
    if not cfg.data:
        raise UsageError("no data folder: pass --data DIR (DIR/train/<class>/*, DIR/val/<class>/* or DIR/<class>/*)")
    if world.distributed and cfg.mode == "feature-extract":
        raise UsageError(
            "--mode feature-extract runs on one process (after epoch 1 its epochs take milliseconds): "
            "start it without torchrun"
        )
    if world.distributed and cfg.balance:
        raise UsageError(
            "--balance cannot be split across torchrun's processes (a weighted sampler draws from the whole set): "
            "drop --balance or start without torchrun"
        )


def train(
    cfg: TransferConfig, *, runs_dir: str | Path = "runs", name: str | None = None, resume: str | None = None
) -> TrainResult:
    """Train as ``cfg`` says, write a run directory, return its summary as a TrainResult (rank 0's, on every
    torchrun process; rank 0 alone writes)."""
    from mltoolkit.core.engine import run_task, session

    started = time.monotonic()
    world = launched_world()
    check_config(cfg, world)
    threads, workers = plan_cores(cfg.threads, cfg.workers, world)
    with session(world, cfg) as device:
        task = make_task(cfg, world, device, workers)
        task.description += f", {threads} threads"
        return run_task(task, world, device, runs_dir=runs_dir, name=name or default_name(cfg), resume=resume,
                        started=started)  # fmt: skip


def default_name(cfg: TransferConfig) -> str:
    return run_name(cfg.model, Path(cfg.data).resolve().name, "fe" if cfg.mode == "feature-extract" else "")


def make_task(cfg: TransferConfig, world: World, device: torch.device, workers: int) -> ClassifierTask:
    """The data checked, the model built with its pretrained weights (a failed download is exit 4 before any run
    directory exists; under torchrun rank 0 downloads first), and the task of the mode."""
    from mltoolkit.core.weights import parse_weights
    from mltoolkit.transfer.data import check_images, find_splits, median_short_side, preprocessing_for
    from mltoolkit.transfer.model import build_model, find_head, freeze_backbone, head_is_last, load_weights

    splits = find_splits(cfg.data, cfg.val_fraction, cfg.seed)
    train_samples = check_images(splits.train, cfg.strict, warn_skipped=world.is_main)
    val_samples = check_images(splits.val, cfg.strict, warn_skipped=world.is_main)
    for split, samples in (("training", train_samples), ("validation", val_samples)):
        if not samples:
            raise DataError(f"{cfg.data}: no readable {split} images")
    if len(train_samples) < world.size:
        raise DataError(f"{cfg.data}: {len(train_samples)} training images for {world.size} processes")
    source = parse_weights(cfg.model, cfg.weights)
    native = median_short_side(train_samples) if cfg.from_scratch and cfg.image_size is None else None
    pre = preprocessing_for(cfg.model, source, cfg.image_size, native)
    model = build_model(cfg.model, len(splits.classes))
    head_name, head = find_head(model, len(splits.classes))
    on_main(world, lambda: load_weights(model, source, head_name))
    if not world.is_main:
        load_weights(model, source, head_name)
    if cfg.mode == "feature-extract":
        if not head_is_last(model, head, pre.crop_size):
            raise DataError(f"{cfg.model}: its final layer is not its last operation; use --mode finetune")
        freeze_backbone(model, head)
    task_class = HeadTask if cfg.mode == "feature-extract" else FinetuneTask
    task = task_class(cfg, world, device, workers, pre, splits.classes, model, head, train_samples, val_samples)
    task.description = (
        f"{cfg.model} ({cfg.mode}, weights {cfg.weights}) on {len(splits.classes)} classes, {len(train_samples)} "
        f"train / {len(val_samples)} val images ({splits.layout}), {pre.crop_size}px, {device}"
    )
    return task


class ClassifierTask(Task):
    """What both modes give the engine: cross-entropy, validation loss and accuracy, best.pt's contents, plots."""

    technique, monitor, headline, train_accuracy, default_epochs = TRANSFER.name, "val_acc", "val_acc", True, 25

    def __init__(
        self, cfg: TransferConfig, world: World, device: torch.device, workers: int, pre: Preprocessing,
        classes: list[str], network: torch.nn.Module, head: torch.nn.Module, train: list[Sample], val: list[Sample],
    ) -> None:  # fmt: skip
        super().__init__(cfg, device)
        self.world, self.workers, self.pre, self.classes = world, workers, pre, classes
        self.network, self.head = network, head

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        if not len(labels):  # an empty batch under DDP (no image decoded): a zero gradient, not the NaN mean of none
            return logits.sum()
        return F.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)

    def val_sums(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch
        import torch.nn.functional as F

        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.config.label_smoothing, reduction="sum")
        correct = (logits.argmax(1) == labels).sum().float()
        return {"sums": torch.stack([loss, correct, torch.tensor(float(len(labels)), device=loss.device)])}

    def val_metrics(self, sums: dict[str, torch.Tensor]) -> dict[str, float]:
        loss, correct, images = sums["sums"].tolist() if sums else (0.0, 0.0, 0.0)
        return {"val_loss": loss / images if images else float("nan"), "val_acc": correct / images if images else 0.0}

    def inference_state(self) -> dict[str, Any]:
        """All that evaluate and predict need: weights, classes, preprocessing, architecture."""
        model = {"model": self.network.state_dict(), "model_name": self.config.model}
        return {**model, "classes": self.classes, "preprocessing": self.pre.to_dict()}

    def plot(self, run: Run, records: list[dict[str, Any]]) -> None:
        from mltoolkit.core.plots import plot_curves

        curves = [["train_loss", "val_loss"], ["train_acc", "val_acc"]]
        title = f"{self.config.model} ({self.config.mode})"
        plot_curves(run.plots / "curves.png", records, "epoch", curves, title=title)


def class_balance_weights(samples: list[Sample], classes: int) -> torch.Tensor:
    """Per-sample weights 1 / (images of its class): each class drawn equally often by ``--balance``."""
    import torch

    labels = torch.tensor([label for _, label in samples])
    counts = torch.bincount(labels, minlength=classes).clamp(min=1).float()
    return (1.0 / counts)[labels]


class FinetuneTask(ClassifierTask):
    """Every layer trains; images are decoded and augmented each epoch by DataLoader workers."""

    def __init__(self, *args: Any) -> None:
        import torch

        from mltoolkit.transfer.data import DecodeFailures, ImageDataset, collate, eval_transform, train_transform

        super().__init__(*args)
        cfg, world, train, val = self.config, self.world, args[-2], args[-1]
        self.model = self.network.to(self.device, memory_format=torch.channels_last if self.channels_last else None)
        train_set = ImageDataset(train, train_transform(self.pre, cfg.resolved_augment()))
        weights = class_balance_weights(train, len(self.classes)) if cfg.balance else None
        options = {"batch_size": cfg.batch_size, "workers": self.workers, "device": self.device, "collate_fn": collate}
        self.set_loaders(train_set, ImageDataset(val, eval_transform(self.pre)), world, weights=weights, **options)
        empty = (3, self.pre.crop_size, self.pre.crop_size) if world.distributed else None
        self.train_loader = Decoded(self.train_loader, DecodeFailures(train, cfg.strict), empty)
        self.val_loader = Decoded(self.val_loader, DecodeFailures(val, cfg.strict), empty)


class Decoded:
    """``collate``'s batches as (images, labels): files that failed to decode are reported, and a batch with none
    left is skipped, or under DDP run empty (``empty_shape``: every process must take every step)."""

    def __init__(self, loader: Any, report: Any, empty_shape: tuple[int, ...] | None) -> None:
        self.loader, self.report, self.empty_shape = loader, report, empty_shape

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        import torch

        for images, labels, _, bad in self.loader:
            if bad:
                self.report(bad)
            if len(labels) == 0:
                if self.empty_shape is None:
                    continue
                images = torch.zeros((0, *self.empty_shape))
            yield images, labels


class HeadTask(ClassifierTask):
    """The backbone is frozen: its features are computed once (epoch 1) and only the head trains (fp32, one small
    layer). ``best.pt`` holds the whole model and is written at the end; ``last.pt`` holds the head and the best head
    so far (small, so checkpointing does not slow the millisecond epochs)."""

    defer_best = True

    def __init__(self, *args: Any) -> None:
        import torch

        from mltoolkit.transfer.data import eval_transform, train_transform

        super().__init__(*args)
        self.amp, self.channels_last, self.model = False, False, self.head
        self.network.to(self.device)
        augment = self.config.resolved_augment()
        views = self.config.views if augment != "none" else 1
        self.generator = torch.Generator()
        self.train_loader = CachedFeatures(self, args[-2], train_transform(self.pre, augment), views, self.generator)
        self.val_loader = CachedFeatures(self, args[-1], eval_transform(self.pre), 1, None)


class CachedFeatures:
    """(features, labels) batches of the head's input, the frozen backbone run once per view on first use.

    Features are taken in eval mode (BatchNorm running statistics, no dropout): a frozen backbone is then a fixed
    function and caching it is exact. With ``--augment basic|strong`` the cache holds ``--views`` augmented views of
    each training image and every epoch draws one view per image, in an order shuffled by ``generator`` (class-
    balanced with ``--balance``); without a generator (validation) in order.
    """

    def __init__(self, task: HeadTask, samples: list[Sample], transform: Any, views: int, generator: Any) -> None:
        from mltoolkit.transfer.data import DecodeFailures

        self.task, self.samples, self.transform, self.views, self.generator = task, samples, transform, views, generator
        self.report = DecodeFailures(samples, task.config.strict)
        self.features: torch.Tensor | None = None  # [views, N, D]

    def __len__(self) -> int:
        return math.ceil(len(self.samples) / self.task.config.batch_size)

    def __iter__(self) -> Any:
        import torch

        if self.features is None:
            self.extract()
        usable, size, generator = self.ok.nonzero().flatten(), self.task.config.batch_size, self.generator
        views = torch.zeros(len(self.samples), dtype=torch.long)
        order = usable
        if generator is not None and self.task.config.balance:
            weights = class_balance_weights([self.samples[i] for i in usable.tolist()], len(self.task.classes))
            order = usable[torch.multinomial(weights, len(usable), replacement=True, generator=generator)]
        elif generator is not None:
            order = usable[torch.randperm(len(usable), generator=generator)]
        if generator is not None:
            views = torch.randint(self.views, (len(self.samples),), generator=generator)
        for start in range(0, len(order), size):
            index = order[start : start + size]
            yield self.features[views[index], index], self.labels[index]

    def extract(self) -> None:
        """Run the backbone over every image (``views`` times), keeping the head's input; rows of images that fail
        to decode stay zero and are left out."""
        import torch

        from mltoolkit.core.console import progress
        from mltoolkit.core.engine import to_device
        from mltoolkit.core.training import autocast, data_loader
        from mltoolkit.transfer.data import ImageDataset, collate

        task, count, training = self.task, len(self.samples), self.task.head.training
        device, cuda = task.device, task.device.type == "cuda"
        amp, channels_last = task.config.amp and cuda, task.config.channels_last and cuda
        loader = data_loader(ImageDataset(self.samples, self.transform), batch_size=task.config.batch_size,
                             workers=task.workers, device=device, collate_fn=collate)  # fmt: skip
        captured: list[torch.Tensor] = []
        handle = task.head.register_forward_pre_hook(lambda _m, inputs: captured.append(inputs[0].flatten(1)))
        views, oks = [], []
        task.network.eval()
        try:
            for view in range(self.views):
                features, ok = torch.zeros(count, 1), torch.zeros(count, dtype=torch.bool)
                with progress(count, f"features, view {view + 1}/{self.views}") as bar, torch.inference_mode():
                    for images, _, indices, bad in loader:
                        if bad:
                            self.report(bad)
                        if len(indices):
                            with autocast(device, amp):
                                task.network(to_device(images, device, channels_last))
                            batch = captured.pop().float().cpu()
                            features = torch.zeros(count, batch.shape[1]) if not ok.any() else features
                            features[indices], ok[indices] = batch, True
                            bar.advance(len(indices))
                views.append(features)
                oks.append(ok)
        finally:
            handle.remove()
            task.head.train(training)
        self.features, self.ok = torch.stack(views), torch.stack(oks).all(0)
        self.labels = torch.tensor([label for _, label in self.samples])
