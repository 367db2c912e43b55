"""``train()``: fine-tune a torchvision classifier, or train a new head on cached frozen features.

The loop is the tutorial's ``train_model``: train an epoch, score the validation set, keep the best
weights by validation accuracy and restore them at the end. Around it: a run directory, ``last.pt``
every epoch for ``--resume``, early stopping, a schedule stepped per iteration, and in
feature-extract mode a cache of the frozen backbone's features so that epochs after the first
cost only the head (the tutorial recomputes the backbone every epoch).

Under ``torchrun --nproc_per_node N`` (core.distributed) fine-tuning is data-parallel: every process
trains on its shard of each epoch (``--batch-size`` images per process per step) through DDP, scores
its shard of the validation set, and the sums are added up; rank 0 alone writes the run directory.
Started without torchrun, everything below runs on one process exactly as before.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.checkpoint import load_checkpoint, save_checkpoint
from mltoolkit.core.config import config_dict
from mltoolkit.core.console import info
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.distributed import (
    World,
    all_sum,
    cores_per_process,
    from_main,
    launched_world,
    on_main,
    start_run_on_main,
)
from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.runs import Run
from mltoolkit.core.training import EarlyStopping, load_scheduler_state, rng_state
from mltoolkit.techniques import TRANSFER
from mltoolkit.transfer.config import TransferConfig
from mltoolkit.transfer.data import Preprocessing, Sample, report_bad_image

if TYPE_CHECKING:
    import torch


def check_config(cfg: TransferConfig) -> None:
    """What the fields' ranges cannot say, refused before anything is loaded or written."""
    if not cfg.data:
        raise UsageError("no data folder: pass --data DIR (DIR/train/<class>/*, DIR/val/<class>/* or DIR/<class>/*)")


def check_distributed(cfg: TransferConfig, world: World) -> None:
    """What torchrun cannot run, refused on every process before any of them joins the group."""
    if not world.distributed:
        return
    if cfg.mode == "feature-extract":
        raise UsageError(
            "--mode feature-extract runs on one process (after epoch 1 its epochs take milliseconds): "
            "start it without torchrun"
        )
    if cfg.balance:
        raise UsageError(
            "--balance cannot be split across torchrun's processes (a weighted sampler draws from the whole set): "
            "drop --balance or start without torchrun"
        )


def default_run_name(cfg: TransferConfig) -> str:
    data = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(cfg.data).resolve().name).strip("-.") or "data"
    return f"{cfg.model}-{data}" + ("-fe" if cfg.mode == "feature-extract" else "")


def train(
    cfg: TransferConfig, *, runs_dir: str | Path = "runs", name: str | None = None, resume: str | None = None
) -> TrainResult:
    """Train as ``cfg`` says, write a run directory, return its summary as a TrainResult.

    Under torchrun every process runs this and gets rank 0's result; rank 0 alone writes the run directory
    (see the module doc).
    """
    import torch

    from mltoolkit.core.device import dataloader_workers, resolve_device, seed_everything, set_threads
    from mltoolkit.core.distributed import join, leave

    check_config(cfg)
    world = launched_world()
    check_distributed(cfg, world)
    started = time.perf_counter()
    share = cores_per_process(world) if world.distributed else None
    threads = set_threads(cfg.threads or share)
    workers = dataloader_workers(cfg.workers if cfg.workers is not None or share is None else min(8, share - 1))
    device = join(world, resolve_device(cfg.device))
    try:
        seed_everything(cfg.seed + world.rank, cfg.deterministic)  # each process its own augmentation draws
        if device.type == "cuda" and not cfg.deterministic:
            torch.backends.cudnn.benchmark = True
        return _train(cfg, world, device, threads, workers, runs_dir, name, resume, started)
    finally:
        leave(world)


def _train(
    cfg: TransferConfig,
    world: World,
    device: torch.device,
    threads: int,
    workers: int,
    runs_dir: str | Path,
    name: str | None,
    resume: str | None,
    started: float,
) -> TrainResult:
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
    # a failed download is exit 4 before any run directory exists; under torchrun rank 0 downloads first
    on_main(world, lambda: load_weights(model, source, head_name))
    if not world.is_main:
        load_weights(model, source, head_name)
    feature_mode = cfg.mode == "feature-extract"
    if feature_mode:
        if not head_is_last(model, head, pre.crop_size):
            raise DataError(f"{cfg.model}: its final layer is not its last operation; use --mode finetune")
        freeze_backbone(model, head)

    run, resumed = start_run_on_main(  # rank 0 creates (or reopens) the run directory
        world,
        TRANSFER.name,
        config_dict(cfg),
        name=name or default_run_name(cfg),
        runs_dir=runs_dir,
        resume=resume,
        device=str(device),
        seed=cfg.seed,
    )
    processes = f", {world.size} processes" if world.distributed else ""
    info(
        f"transfer: {cfg.model} ({cfg.mode}, weights {cfg.weights}) on {len(splits.classes)} classes, "
        f"{len(train_samples)} train / {len(val_samples)} val images ({splits.layout}), "
        f"{pre.crop_size}px, {device}, {threads} threads{processes} -> {run.path}"
    )
    setup = TrainingSetup(cfg, device, workers=workers, pre=pre, classes=splits.classes, world=world)
    learner_cls = HeadLearner if feature_mode else FinetuneLearner
    learner = learner_cls(setup, model, head, train_samples, val_samples)
    return fit(learner, run, resumed, started)


class TrainingSetup:
    """What both learners share: the config, device, preprocessing and classes, the processes, the bad-file
    reporter, and the optimizer and schedule the config asks for."""

    def __init__(
        self,
        cfg: TransferConfig,
        device: torch.device,
        *,
        workers: int,
        pre: Preprocessing,
        classes: list[str],
        world: World | None = None,
    ) -> None:
        self.cfg, self.device, self.workers, self.pre, self.classes = cfg, device, workers, pre, classes
        self.world = world or World()
        self.amp = cfg.amp and device.type == "cuda"
        self.channels_last = cfg.channels_last and device.type == "cuda"
        self._reported: set[str] = set()

    @property
    def reduce(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Sums over torchrun's processes (``all_sum``); None on one process."""
        if not self.world.distributed:
            return None
        return lambda tensor: all_sum(tensor, self.world, self.device)

    def bad_reporter(self, samples: list[Sample]) -> Any:
        def report(indices: list[int]) -> None:
            for index in indices:
                path = samples[index][0]
                if path not in self._reported:
                    self._reported.add(path)
                    report_bad_image(path, "cannot be decoded", self.cfg.strict)

        return report

    def inference_state(self, model: torch.nn.Module, **extra: Any) -> dict[str, Any]:
        """All that evaluate and predict need: weights, classes, preprocessing, architecture."""
        return {
            "model": model.state_dict(),
            "model_name": self.cfg.model,
            "classes": self.classes,
            "preprocessing": self.pre.to_dict(),
            **extra,
        }

    def optimizer(self, parameters: Any) -> torch.optim.Optimizer:
        import torch

        cfg = self.cfg
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(parameters, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def scheduler(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
        from mltoolkit.core.training import make_scheduler

        cfg = self.cfg
        return make_scheduler(
            cfg.schedule,
            optimizer,
            epochs=cfg.epochs,
            steps_per_epoch=steps_per_epoch,
            warmup_epochs=cfg.warmup_epochs,
            step_size=cfg.step_size,
            gamma=cfg.gamma,
        )

    def epoch_generator(self, epoch: int) -> torch.Generator:
        """Shuffling drawn from (seed, epoch): a resumed run shuffles as the uninterrupted one would."""
        import torch

        generator = torch.Generator()  # under torchrun each process draws its own (worker augmentation seeds)
        generator.manual_seed(self.cfg.seed * 1_000_003 + epoch + self.world.rank * 1_000_000_007)
        return generator


def class_balance_weights(samples: list[Sample], classes: int) -> torch.Tensor:
    """Per-sample weights 1 / (images of its class): each class drawn equally often by ``--balance``."""
    import torch

    labels = torch.tensor([label for _, label in samples])
    counts = torch.bincount(labels, minlength=classes).clamp(min=1).float()
    return (1.0 / counts)[labels]


class FinetuneLearner:
    """Every layer trains; images are decoded and augmented each epoch by DataLoader workers."""

    def __init__(
        self,
        setup: TrainingSetup,
        model: torch.nn.Module,
        head: torch.nn.Module,
        train: list[Sample],
        val: list[Sample],
    ) -> None:
        import torch

        from mltoolkit.core.distributed import shard, train_sampler, wrap
        from mltoolkit.core.training import data_loader, grad_scaler
        from mltoolkit.transfer.data import ImageDataset, collate, eval_transform, train_transform

        cfg, world = setup.cfg, setup.world
        self.setup = setup
        self.model = model.to(setup.device, memory_format=torch.channels_last if setup.channels_last else None)
        self.net = wrap(self.model, world, setup.device)  # DDP under torchrun: what trains; self.model is saved
        self.generator = torch.Generator()
        sampler = None
        if cfg.balance:
            weights = class_balance_weights(train, len(setup.classes))
            sampler = torch.utils.data.WeightedRandomSampler(weights, len(train), generator=self.generator)
        transform = train_transform(setup.pre, cfg.resolved_augment())
        train_set = ImageDataset(train, transform)
        self.shard_sampler = train_sampler(train_set, world, cfg.seed)  # this process's shard; None on one
        sampler = sampler or self.shard_sampler
        loader = data_loader(
            train_set,
            batch_size=cfg.batch_size,
            workers=setup.workers,
            device=setup.device,
            collate_fn=collate,
            shuffle=True,
            sampler=sampler,
            generator=self.generator,
        )
        self.train_loader, self.train_samples = loader, train
        self.val_loader = data_loader(
            shard(ImageDataset(val, eval_transform(setup.pre)), world),
            batch_size=cfg.batch_size,
            workers=setup.workers,
            device=setup.device,
            collate_fn=collate,
        )
        self.val_samples = val
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.optimizer = setup.optimizer(self.model.parameters())
        self.scheduler = setup.scheduler(self.optimizer, len(loader))
        self.scaler = grad_scaler(setup.device, setup.amp)
        self.best: dict[str, torch.Tensor] | None = None
        self.best_on_disk = True

    def train_epoch(self, epoch: int) -> Any:
        from mltoolkit.transfer.engine import train_epoch

        self.generator.set_state(self.setup.epoch_generator(epoch).get_state())
        if self.shard_sampler is not None:
            self.shard_sampler.set_epoch(epoch)
        distributed = self.setup.world.distributed
        return train_epoch(
            self.net,
            self.train_loader,
            criterion=self.criterion,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
            device=self.setup.device,
            amp=self.setup.amp,
            channels_last=self.setup.channels_last,
            on_bad=self.setup.bad_reporter(self.train_samples),
            description=f"epoch {epoch}/{self.setup.cfg.epochs}",
            total=len(self.shard_sampler) if self.shard_sampler is not None else len(self.train_samples),
            reduce=self.setup.reduce,
            empty_shape=(3, self.setup.pre.crop_size, self.setup.pre.crop_size) if distributed else None,
        )

    def validate(self) -> tuple[float, float, int]:
        from mltoolkit.transfer.engine import validate

        return validate(
            self.model,  # not DDP: the shards may differ in length by one image, and scoring needs no sync
            self.val_loader,
            criterion=self.criterion,
            reduce=self.setup.reduce,
            device=self.setup.device,
            amp=self.setup.amp,
            channels_last=self.setup.channels_last,
            on_bad=self.setup.bad_reporter(self.val_samples),
        )

    def training_state(self) -> dict[str, Any]:
        return {
            "weights": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_training_state(self, state: dict[str, Any], run: Run) -> None:
        self.model.load_state_dict(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        load_scheduler_state(self.scheduler, state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        best = run.checkpoints / "best.pt"
        if best.exists():
            self.best = load_checkpoint(best, TRANSFER.name)["state"]["model"]

    def keep_best(self) -> None:
        self.best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restore_best(self) -> torch.nn.Module:
        if self.best is not None:
            self.model.load_state_dict(self.best)
        return self.model


class HeadLearner:
    """The backbone is frozen: its features are computed once (epoch 1) and only the head trains.

    Features are taken in eval mode (BatchNorm running statistics, no dropout): a frozen backbone is
    then a fixed function and caching it is exact. With ``--augment basic|strong`` the cache holds
    ``--views`` augmented views of each training image and every epoch draws one view per image.
    """

    def __init__(
        self,
        setup: TrainingSetup,
        model: torch.nn.Module,
        head: torch.nn.Module,
        train: list[Sample],
        val: list[Sample],
    ) -> None:
        import torch

        from mltoolkit.core.training import grad_scaler

        cfg = setup.cfg
        self.setup, self.model, self.head = setup, model.to(setup.device), head
        self.train_samples, self.val_samples = train, val
        self.augment = cfg.resolved_augment()
        self.views = cfg.views if self.augment != "none" else 1
        self.train_features: torch.Tensor | None = None  # [views, N, D]
        self.val_features: torch.Tensor | None = None
        self.train_labels = torch.tensor([label for _, label in train])
        self.val_labels = torch.tensor([label for _, label in val])
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.optimizer = setup.optimizer(self.head.parameters())
        self.scheduler = setup.scheduler(self.optimizer, math.ceil(len(train) / cfg.batch_size))
        self.scaler = grad_scaler(setup.device, False)  # the head is one small layer: fp32
        self.best: dict[str, torch.Tensor] | None = None
        self.best_on_disk = False

    def _extract(self, samples: list[Sample], transform: Any, description: str) -> tuple[torch.Tensor, torch.Tensor]:
        from mltoolkit.core.training import data_loader
        from mltoolkit.transfer.data import ImageDataset, collate
        from mltoolkit.transfer.engine import extract_features

        loader = data_loader(
            ImageDataset(samples, transform),
            batch_size=self.setup.cfg.batch_size,
            workers=self.setup.workers,
            device=self.setup.device,
            collate_fn=collate,
        )
        return extract_features(
            self.model,
            self.head,
            loader,
            size=len(samples),
            device=self.setup.device,
            amp=self.setup.amp,
            channels_last=self.setup.channels_last,
            on_bad=self.setup.bad_reporter(samples),
            description=description,
        )

    def _cache_train(self) -> None:
        import torch

        from mltoolkit.transfer.data import train_transform

        transform = train_transform(self.setup.pre, self.augment)
        views, masks = [], []
        for view in range(self.views):
            features, ok = self._extract(self.train_samples, transform, f"features, view {view + 1}/{self.views}")
            views.append(features)
            masks.append(ok)
        self.train_features = torch.stack(views)
        self.train_ok = torch.stack(masks).all(0)

    def _batches(self, features: torch.Tensor, labels: torch.Tensor, order: torch.Tensor, views: Any) -> Any:
        """Batches in the shape ``engine`` expects: ``(x, y, indices, bad)``."""
        size = self.setup.cfg.batch_size
        for start in range(0, len(order), size):
            index = order[start : start + size]
            x = features[index] if views is None else features[views[index], index]
            yield x, labels[index], index, []

    def train_epoch(self, epoch: int) -> Any:
        import torch

        from mltoolkit.transfer.engine import train_epoch

        if self.train_features is None:
            self._cache_train()
        generator = self.setup.epoch_generator(epoch)
        usable = self.train_ok.nonzero().flatten()
        if self.setup.cfg.balance:
            weights = class_balance_weights([self.train_samples[i] for i in usable.tolist()], len(self.setup.classes))
            order = usable[torch.multinomial(weights, len(usable), replacement=True, generator=generator)]
        else:
            order = usable[torch.randperm(len(usable), generator=generator)]
        views = torch.randint(self.views, (len(self.train_samples),), generator=generator)
        return train_epoch(
            self.head,
            self._batches(self.train_features, self.train_labels, order, views),  # type: ignore[arg-type]
            criterion=self.criterion,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
            device=self.setup.device,
            amp=False,
            channels_last=False,
            on_bad=lambda _: None,
            description=f"epoch {epoch}/{self.setup.cfg.epochs} (head)",
            total=len(order),
        )

    def validate(self) -> tuple[float, float, int]:
        from mltoolkit.transfer.data import eval_transform
        from mltoolkit.transfer.engine import validate

        if self.val_features is None:
            self.val_features, self.val_ok = self._extract(
                self.val_samples, eval_transform(self.setup.pre), "features, val"
            )
        order = self.val_ok.nonzero().flatten()
        return validate(
            self.head,
            self._batches(self.val_features, self.val_labels, order, None),
            criterion=self.criterion,
            device=self.setup.device,
            amp=False,
            channels_last=False,
            on_bad=lambda _: None,
        )

    def training_state(self) -> dict[str, Any]:
        return {
            "head": self.head.state_dict(),
            "best_head": self.best,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_training_state(self, state: dict[str, Any], run: Run) -> None:
        self.head.load_state_dict(state["head"])
        self.best = state["best_head"]
        self.optimizer.load_state_dict(state["optimizer"])
        load_scheduler_state(self.scheduler, state["scheduler"])

    def keep_best(self) -> None:
        self.best = {k: v.detach().clone() for k, v in self.head.state_dict().items()}

    def restore_best(self) -> torch.nn.Module:
        if self.best is not None:
            self.head.load_state_dict(self.best)
        return self.model


Learner = FinetuneLearner | HeadLearner


class Progress:
    """Where the epoch loop stands (epoch, best epoch, metric rows, early stopping) and what it writes:
    ``last.pt`` every epoch, ``best.pt`` when the best epoch changes, the summary at the end."""

    def __init__(self, learner: Learner, run: Run, stopper: EarlyStopping) -> None:
        self.learner, self.run, self.stopper = learner, run, stopper
        self.cfg = learner.setup.cfg
        self.epoch, self.best_epoch = 0, 0
        self.records: list[dict[str, Any]] = []
        self.last_path, self.best_path = run.checkpoints / "last.pt", run.checkpoints / "best.pt"

    def resume(self) -> None:
        """Continue after the checkpoint ``Run.resume_checkpoint`` names. ``last.pt`` holds the whole training
        state; ``best.pt``, all a kill during the first save of ``last.pt`` leaves, holds the weights of
        epoch 1 alone: training goes on from them with a fresh optimizer and schedule."""
        from mltoolkit.core.training import set_rng_state

        path = self.run.resume_checkpoint()
        state = load_checkpoint(path, TRANSFER.name)["state"]
        if path.name == "best.pt":
            self.learner.model.load_state_dict(state["model"])
            self.learner.keep_best()
            self.epoch = self.best_epoch = state["epoch"]
            self.stopper.improved(state["val_acc"])
        else:
            self.learner.load_training_state(state["training"], self.run)
            self.stopper.load_state_dict(state["early_stopping"])
            if self.learner.setup.world.is_main:  # rank 0's generators; the others keep their seeds (seed + rank)
                set_rng_state(state["rng"])
            self.epoch, self.best_epoch = state["epoch"], state["best_epoch"]
        if self.learner.setup.world.is_main:
            self.run.keep_metrics_until("epoch", self.epoch)
        self.records = [r for r in self.run.read_metrics() if r.get("epoch", 0) <= self.epoch]
        info(f"resuming {self.run.path} after epoch {self.epoch} (from {path.name})")

    def run_epoch(self, epoch: int) -> None:
        """Train and validate one epoch; on rank 0, log it and checkpoint it."""
        learner, started = self.learner, time.perf_counter()
        stats = learner.train_epoch(epoch)
        val_loss, val_acc, _ = learner.validate()
        if self.stopper.improved(val_acc):  # val_acc is all-reduced: every process agrees
            self.best_epoch = epoch
            if learner.setup.world.is_main:
                learner.keep_best()
        self.epoch = epoch
        record = {
            "epoch": epoch,
            "train_loss": stats.loss,
            "train_acc": stats.accuracy,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": learner.optimizer.param_groups[0]["lr"],
            "train_images_per_s": round(stats.images_per_s, 2),
            "epoch_time_s": round(time.perf_counter() - started, 3),
        }
        self.records.append(record)
        if learner.setup.world.is_main:
            if self.best_epoch == epoch and learner.best_on_disk:
                self.save_best()
            self.save_last(record)
            self.run.log(record)
        info(
            f"epoch {epoch}/{self.cfg.epochs}  train loss {stats.loss:.4f} acc {stats.accuracy:.4f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.4f}  {stats.images_per_s:.1f} img/s  "
            f"{record['epoch_time_s']:.1f}s" + ("  *best*" if self.best_epoch == epoch else "")
        )

    def best_record(self) -> dict[str, Any] | None:
        return next((r for r in self.records if r["epoch"] == self.best_epoch), None)

    def save_best(self) -> None:
        model = self.learner.restore_best()
        save_checkpoint(
            self.best_path,
            technique=TRANSFER.name,
            config=config_dict(self.cfg),
            state=self.learner.setup.inference_state(model, epoch=self.best_epoch, val_acc=self.stopper.best),
            metrics=self.best_record() or {},
        )

    def save_last(self, record: dict[str, Any]) -> None:
        save_checkpoint(
            self.last_path,
            technique=TRANSFER.name,
            config=config_dict(self.cfg),
            state={
                "epoch": self.epoch,
                "best_epoch": self.best_epoch,
                "training": self.learner.training_state(),
                "early_stopping": self.stopper.state_dict(),
                "rng": rng_state(),
            },
            metrics=record,
        )

    def finish(self, status: str, started: float) -> TrainResult:
        """summary.json through ``Run.finish``; best val_acc is the headline."""
        world = self.learner.setup.world
        return self.run.finish(
            status,
            {"metric": "val_acc", "value": self.stopper.best},
            best=self.best_record(),
            final=self.records[-1] if self.records else None,
            wall_time_s=time.perf_counter() - started,
            epochs_run=len(self.records),
            best_checkpoint=str(self.best_path.relative_to(self.run.path)) if self.best_path.exists() else None,
            **({"processes": world.size} if world.distributed else {}),
        )


def result_line(result: TrainResult) -> dict[str, Any]:
    """What ``mltk transfer train`` prints: the run and its headline numbers, from the summary."""
    summary = result.summary
    return {
        "run_dir": str(result.run_dir),
        "best_val_acc": result.headline.get("value"),
        "best_epoch": (summary.get("best") or {}).get("epoch", 0),
        "final_val_acc": (summary.get("final") or {}).get("val_acc"),
        "epochs_run": summary.get("epochs_run", 0),
        "wall_time_s": summary.get("wall_time_s"),
    }


def fit(learner: Learner, run: Run, resumed: bool, started: float) -> TrainResult:
    """The epoch loop shared by both modes: train, validate, keep the best, checkpoint, stop early.

    Under torchrun every process runs it with the same (all-reduced) validation numbers, so all take
    the same best-epoch and stopping decisions; rank 0 alone writes checkpoints, metrics and plots. Every
    process returns rank 0's result.
    """
    setup, cfg = learner.setup, learner.setup.cfg
    main = setup.world.is_main
    progress = Progress(learner, run, EarlyStopping(cfg.patience, "max"))
    if resumed:
        progress.resume()
    try:
        for epoch in range(progress.epoch + 1, cfg.epochs + 1):
            progress.run_epoch(epoch)
            if progress.stopper.should_stop:
                info(f"early stop: val_acc has not improved for {cfg.patience} epochs")
                break
    except KeyboardInterrupt:
        if main:  # last.pt already holds the last finished epoch
            if not learner.best_on_disk and learner.best is not None:
                progress.save_best()
            progress.finish("interrupted", started)
        raise
    result = None
    if main:
        from mltoolkit.core.plots import plot_curves

        if not learner.best_on_disk or not progress.best_path.exists():
            progress.save_best()
        learner.restore_best()
        plot_curves(
            run.plots / "curves.png",
            progress.records,
            "epoch",
            [["train_loss", "val_loss"], ["train_acc", "val_acc"]],
            title=f"{cfg.model} ({cfg.mode})",
        )
        result = progress.finish("early_stopped" if progress.stopper.should_stop else "completed", started)
    return from_main(result, setup.world)
