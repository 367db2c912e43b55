"""The training loop: torchvision's segmentation reference, plain, with a wall-clock budget.

Per epoch: train on random crops (drop_last, since a batch of one breaks BatchNorm), then the
confusion matrix over the validation split at the training resolution; ``best.pt`` by val mIoU,
``last.pt`` every epoch (and on Ctrl-C), one ``metrics.jsonl`` line. The learning rate warms up
linearly and then decays as torchvision's ``poly`` (stepped per iteration). With ``--time-budget``
the number of steps is re-planned after each epoch from the measured step and validation times
(the last epoch may be partial), so the decay still ends at zero when the budget runs out.

Under ``torchrun`` (core.distributed) each process trains on its shard of every epoch through DDP,
validates its share of the split (the confusion matrices are summed), and follows rank 0's plan;
rank 0 alone writes the run directory.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mltoolkit.core.checkpoint import load_checkpoint, save_checkpoint
from mltoolkit.core.config import config_dict
from mltoolkit.core.console import info, progress, warn
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.device import dataloader_workers, resolve_device, seed_everything, set_threads
from mltoolkit.core.distributed import (
    World,
    all_sum,
    cores_per_process,
    from_main,
    join,
    launched_world,
    leave,
    shard,
    start_run_on_main,
    train_sampler,
    wrap,
)
from mltoolkit.core.errors import DataError
from mltoolkit.core.plots import plot_curves
from mltoolkit.core.runs import Run
from mltoolkit.core.training import (
    EarlyStopping,
    autocast,
    data_loader,
    grad_scaler,
    make_scheduler,
    rng_state,
    set_rng_state,
)
from mltoolkit.segment.config import (
    MODELS,
    SLOW_ON_CPU,
    SegmentConfig,
    check_config,
    parse_size,
    resolved_lr,
    resolved_weight_decay,
)
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
from mltoolkit.segment.metrics import ConfusionMatrix
from mltoolkit.segment.model import build_model, normalization, uses_aux
from mltoolkit.techniques import SEGMENT

DEFAULT_EPOCHS = 30
FINAL_RESERVE_S = 5.0  # time kept back from --time-budget for plots and the summary
VAL_BATCH_COST = 0.6  # a validation batch against a training step (forward only; 0.45 measured on CPU)


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
    """Fill in every default that depends on the data or on other options, for config.json."""
    size = parse_size(config.size)
    workers = config.workers if config.workers is not None else dataloader_workers(None)
    cache = config.cache
    if cache is None:
        cache = cache_fits(train_pairs, base_size(size, config.scale), copies=workers)
    return replace(
        config,
        data=str(layout.root),
        ignore_index=ignore,
        lr=resolved_lr(config),
        weight_decay=resolved_weight_decay(config),
        aux_loss=uses_aux(config),
        cache=cache,
        workers=workers,
    )


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
    started = time.monotonic()
    world = launched_world()
    try:
        check_config(config)
        workers = config.workers if config.workers is not None else dataloader_workers(None)
        # threads + worker processes = cores (shared by the torchrun processes): 2 torch threads beside a busy
        # worker on 2 cores ran 5x slower
        threads = set_threads(config.threads or max(1, cores_per_process(world) - workers))
        device = join(world, resolve_device(config.device))
        seed_everything(config.seed, config.deterministic)
        data = read_data(config, threads + workers)
        if MODELS[data.config.model] in SLOW_ON_CPU and device.type == "cpu":
            warn(f"{config.model} trains at about 0.5 images/s at 256x256 on 2 CPU cores; lraspp_mobilenet_v3_large ~8")
        trainer = Trainer(data, world, device, pretrained=resume is None)
        run, resumed = start_run_on_main(  # rank 0 creates (or reopens) the run; only rank 0 writes to it
            world,
            SEGMENT.name,
            config_dict(data.config),
            name=name or _default_name(data.config),
            runs_dir=runs_dir,
            resume=resume,
            device=str(device),
            seed=config.seed,
        )
        return from_main(trainer.fit(run, resumed, started), world)
    finally:
        leave(world)


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


def train_one_epoch(
    model, loader, criterion, optimizer, scaler, scheduler, device, config, memory_format, title: str, should_stop
) -> tuple[Any, int, int, float]:
    """One pass over ``loader`` (cut short when ``should_stop(steps, seconds_per_step)``): the summed loss (a
    tensor, so CUDA is not synced every step), images seen, steps taken and seconds spent."""
    import torch

    model.train()
    loss_sum, images_seen, steps = torch.zeros((), device=device), 0, 0
    with progress(len(loader), title) as bar:
        start = shown = time.monotonic()
        for images, masks in loader:
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            masks = masks.to(device, non_blocking=True)
            with autocast(device, config.amp):
                loss = criterion(model(images), masks)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            steps += 1
            loss_sum += loss.detach() * images.shape[0]
            images_seen += images.shape[0]
            if time.monotonic() - shown > 1.0:  # .item() syncs CUDA: once a second at most
                shown = time.monotonic()
                bar.advance(1, loss=loss_sum.item() / images_seen, lr=optimizer.param_groups[0]["lr"])
            else:
                bar.advance(1)
            if should_stop(steps, (time.monotonic() - start) / steps):
                break
    return loss_sum, images_seen, steps, time.monotonic() - start


class Trainer:
    """The model, optimizer and loaders of a run, and where the run stands: epoch, step, the planned number of
    steps (re-planned under --time-budget), the best val mIoU so far."""

    def __init__(self, data: Data, world: World, device, *, pretrained: bool) -> None:
        import torch

        self.data, self.config, self.world, self.device = data, data.config, world, device
        config, classes = data.config, data.classes
        self.size, (self.mean, self.std) = parse_size(config.size), normalization(config)
        common = (classes, self.size, self.mean, self.std, data.ignore)
        train_set = PairDataset(data.train_split, *common, train=True, scale=config.scale, cache=config.cache)
        val_set = PairDataset(data.val_split, *common, train=False, cache=config.cache)
        loader_args = {"batch_size": config.batch_size, "workers": config.workers, "device": device}
        self.generator = torch.Generator().manual_seed(config.seed)
        self.sampler = train_sampler(train_set, world, config.seed)
        self.train_loader = data_loader(
            train_set, shuffle=True, drop_last=True, generator=self.generator, sampler=self.sampler, **loader_args
        )
        self.val_loader = data_loader(shard(val_set, world), **loader_args)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model = build_model(config, len(classes), pretrained=pretrained).to(
            device, memory_format=self.memory_format
        )
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        if config.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(
                parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
            )
        self.scaler = grad_scaler(device, config.amp)
        weights = class_weights(config.class_weights, data.train_split.counts)
        self.criterion = SegmentationLoss(
            config.loss, data.ignore, torch.tensor(weights, device=device) if weights is not None else None
        )
        self.stopper = EarlyStopping(config.patience, "max")
        self.steps_per_epoch = len(self.train_loader)
        max_epochs = config.epochs or (DEFAULT_EPOCHS if config.time_budget is None else 10**6)
        self.max_steps = max_epochs * self.steps_per_epoch
        # under a time budget: a first guess, re-planned after each epoch
        self.planned = self.max_steps if config.time_budget is None else min(max_epochs, 100) * self.steps_per_epoch
        self.budget = config.time_budget * 60 if config.time_budget else math.inf
        self.epoch, self.step, self.elapsed_before = 0, 0, 0.0
        self.val_time: float | None = None  # seconds one validation took, once one has run
        self.step_time = 0.0  # seconds per training step in the current epoch
        self.last_record: dict[str, Any] = {}

    def fit(self, run: Run, resumed: bool, started: float) -> TrainResult | None:
        """Epochs until the planned steps are done (or early stopping); the result on rank 0, None elsewhere."""
        self.run, self.started = run, started
        if resumed:
            self.resume()
        self.net = wrap(self.model, self.world, self.device)  # after any resume: DDP starts from rank 0's weights
        self.scheduler = _scheduler_at(self.config, self.optimizer, self.planned, self.steps_per_epoch, self.step)
        config = self.config
        info(
            f"training {config.model} on {self.device} ({len(self.data.classes)} classes, {config.size}, batch "
            f"{config.batch_size}, "
            + (f"time budget {config.time_budget:g} min" if config.time_budget else f"{self.planned_epochs()} epochs")
            + (f", {self.world.size} processes" if self.world.distributed else "")
            + f") -> {run.path}"
        )
        status = "completed"
        try:
            while self.step < self.planned:
                self.run_epoch()
                if self.stopper.should_stop:
                    info(f"early stopping: val mIoU has not improved for {config.patience} evaluations")
                    status = "early_stopped"
                    break
        except KeyboardInterrupt:
            self.save(run.checkpoints / "last.pt", self.last_record)
            if self.world.is_main:
                self.finish("interrupted")
            raise
        if not self.world.is_main:
            return None
        self.plot()
        return self.finish(status)

    def run_epoch(self) -> None:
        """Train one epoch, validate when due, log its metrics row, re-plan the budget, save last.pt."""
        import torch

        epoch_start = time.monotonic()
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
        loss_sum, images_seen, steps, train_time = train_one_epoch(
            self.net,
            self.train_loader,
            self.criterion,
            self.optimizer,
            self.scaler,
            self.scheduler,
            self.device,
            self.config,
            self.memory_format,
            f"epoch {self.epoch + 1}/{self.planned_epochs()}",
            self.stop_mid_epoch,
        )
        self.epoch, self.step = self.epoch + 1, self.step + steps
        totals = torch.stack([loss_sum, torch.tensor(float(images_seen), device=self.device)])
        loss_total, images_total = all_sum(totals, self.world, self.device).tolist()
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": loss_total / max(1.0, images_total),
            "train_images_per_s": images_total / max(train_time, 1e-9),  # all processes together
        }
        out_of_time = self.over_budget()
        if self.epoch % self.config.eval_every == 0 or self.step >= self.planned or out_of_time:
            val_start = time.monotonic()
            data = self.data
            record.update(
                validate(
                    self.model,
                    self.val_loader,
                    self.criterion,
                    len(data.classes),
                    data.ignore,
                    self.device,
                    self.config,
                    self.memory_format,
                    self.world,
                )
            )
            self.val_time = time.monotonic() - val_start
            if record["miou"] is not None and self.stopper.improved(record["miou"]):
                record["best"] = True
                self.save(self.run.checkpoints / "best.pt", record)
        record["epoch_time_s"] = time.monotonic() - epoch_start
        record["elapsed_s"] = self.elapsed()
        if self.world.is_main:
            self.run.log(record)
        self.last_record = record
        info(_describe(record, self.planned_epochs()))
        if self.config.time_budget and self.step < self.planned:
            self.replan(out_of_time)
        self.save(self.run.checkpoints / "last.pt", record)

    def stop_mid_epoch(self, steps: int, step_time: float) -> bool:
        self.step_time = step_time
        return self.step + steps >= self.planned or self.over_budget()

    def replan(self, out_of_time: bool) -> None:
        """As many more steps as the remaining time holds (rank 0's plan on every process)."""
        more = (
            0
            if out_of_time
            else steps_that_fit(
                self.budget - self.elapsed() - FINAL_RESERVE_S,
                self.step_time,
                validation_time(self.val_time, self.step_time, len(self.val_loader)),
                self.steps_per_epoch,
                self.config.eval_every,
            )
        )
        planned = from_main(min(self.max_steps, self.step + more), self.world)
        if planned != self.planned:
            self.planned = planned
            self.scheduler = _scheduler_at(self.config, self.optimizer, planned, self.steps_per_epoch, self.step)

    def planned_epochs(self) -> int:
        return -(-self.planned // self.steps_per_epoch)

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def over_budget(self) -> bool:
        import torch

        val_time = validation_time(self.val_time, self.step_time, len(self.val_loader))
        over = self.elapsed() > self.budget - FINAL_RESERVE_S - val_time
        if self.world.distributed and self.budget < math.inf:  # every process must stop at the same step
            over = bool(all_sum(torch.tensor(float(over)), self.world, self.device) > 0)
        return over

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "early_stopping": self.stopper.state_dict(),
            "rng": rng_state(),
            "loader_rng": self.generator.get_state(),
            "epoch": self.epoch,
            "step": self.step,
            "planned_steps": self.planned,
            "elapsed": self.elapsed(),
            "num_classes": len(self.data.classes),
        }

    def save(self, path: Path, metrics: dict[str, Any]) -> None:
        """A checkpoint with the whole config plus what predict needs to read images (classes, normalisation)."""
        if not self.world.is_main:
            return
        classes = self.data.classes
        meta = {
            "class_names": classes.names,
            "class_colors": [list(c) for c in classes.colors],
            "class_values": classes.values,
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": self.data.layout.kind,
        }
        config = {**config_dict(self.config), **meta}
        save_checkpoint(path, technique=SEGMENT.name, config=config, state=self.checkpoint_state(), metrics=metrics)

    def resume(self) -> None:
        """Continue after the checkpoint ``Run.resume_checkpoint`` names; metrics rows logged after it go."""
        state = load_checkpoint(self.run.resume_checkpoint(), SEGMENT.name)["state"]
        if state["num_classes"] != len(self.data.classes):
            raise DataError(
                f"{self.run.path}: trained for {state['num_classes']} classes, the data has {len(self.data.classes)}"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.stopper.load_state_dict(state["early_stopping"])
        set_rng_state(state["rng"])
        self.generator.set_state(state["loader_rng"])
        self.epoch, self.step, self.elapsed_before = state["epoch"], state["step"], state["elapsed"]
        if self.config.time_budget is not None:
            self.planned = max(self.step, min(self.max_steps, state["planned_steps"]))
        if self.world.is_main:
            self.run.keep_metrics_until("epoch", self.epoch)
        info(f"resuming {self.run.path} after epoch {self.epoch}")

    def plot(self) -> None:
        data = self.data
        _finish_plots(
            self.run,
            self.model,
            data.val_split,
            data.classes,
            self.config,
            self.device,
            self.size,
            self.mean,
            self.std,
            data.ignore,
            self.memory_format,
        )

    def finish(self, status: str) -> TrainResult:
        """summary.json through ``Run.finish``: best val mIoU is the headline."""
        records = self.run.read_metrics()
        best = next((r for r in records if r.get("best") and r.get("miou") == self.stopper.best), {})
        return self.run.finish(
            status,
            {"metric": "val_miou", "value": self.stopper.best},
            best={k: best.get(k) for k in ("epoch", "miou", "pixel_accuracy", "val_loss")},
            final=self.last_record,
            wall_time_s=self.elapsed(),
            best_checkpoint="checkpoints/best.pt",
            epochs=self.epoch,
            train_images_per_s=_median([r["train_images_per_s"] for r in records]),
        )


def result_line(result: TrainResult) -> dict[str, Any]:
    """What ``mltk segment train`` prints: the run and its headline numbers, from the summary."""
    summary, best = result.summary, result.summary.get("best") or {}
    return {
        "run_dir": str(result.run_dir),
        "best_val_miou": best.get("miou"),
        "best_epoch": best.get("epoch"),
        "val_pixel_accuracy": best.get("pixel_accuracy"),
        "epochs": summary.get("epochs"),
        "train_images_per_s": summary.get("train_images_per_s"),
        "wall_time_s": summary.get("wall_time_s"),
    }


def validate(
    model, loader, criterion, num_classes, ignore, device, config, memory_format, world: World = World()
) -> dict[str, Any]:
    """Loss and confusion-matrix metrics over the whole validation split (summed over every process's share)."""
    import torch

    model.eval()
    matrix = ConfusionMatrix(num_classes, ignore)
    total, count = 0.0, 0
    with torch.inference_mode():
        for images, masks in loader:
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            masks = masks.to(device, non_blocking=True)
            with autocast(device, config.amp):
                outputs = model(images)
            total += float(criterion.single(outputs["out"].float(), masks)) * images.shape[0]
            count += images.shape[0]
            matrix.update(masks, outputs["out"].argmax(1))
    matrix.matrix = all_sum(matrix.matrix, world, device)
    total, count = all_sum(torch.tensor([total, count], dtype=torch.float64), world, device).tolist()
    metrics = matrix.compute()
    return {"val_loss": total / max(1, count), "pixel_accuracy": metrics["pixel_accuracy"], "miou": metrics["miou"]}


def validation_time(measured: float | None, step_time: float, batches: int) -> float:
    """Seconds a validation takes: as measured once one has run, and before that guessed from the training
    steps, so that a budget shorter than one epoch keeps room for the validation that ends it (counted as
    0 s, a 20 s budget ran 28 s)."""
    return measured if measured is not None else batches * step_time * VAL_BATCH_COST


def steps_that_fit(remaining: float, step_time: float, val_time: float, steps_per_epoch: int, eval_every: int) -> int:
    """Training steps that fit in ``remaining`` seconds with a validation every ``eval_every`` epochs and one
    at the end; the last epoch may be partial, so no budget is left unused."""
    epoch_cost = steps_per_epoch * step_time * 1.03 + val_time / eval_every  # 3% for load jitter
    full = max(0, int((remaining - val_time) // epoch_cost))
    leftover = remaining - val_time - full * epoch_cost
    return full * steps_per_epoch + max(0, int(leftover // (step_time * 1.03)))


def _scheduler_at(config: SegmentConfig, optimizer, total_steps: int, steps_per_epoch: int, step: int):
    """The schedule over ``total_steps`` iterations, positioned at ``step`` (on start, resume and re-plan)."""
    import warnings

    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"]
    total_steps = max(1, total_steps)
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total_steps - 1)
    if config.schedule == "step":  # decays every step_size epochs: keep epochs as the unit
        epochs = -(-total_steps // steps_per_epoch)
        scheduler = make_scheduler(
            "step", optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch, warmup_epochs=warmup / steps_per_epoch
        )
    else:  # one "epoch" of total_steps: the decay ends exactly at the planned last step
        scheduler = make_scheduler(
            config.schedule,
            optimizer,
            epochs=1,
            steps_per_epoch=total_steps,
            warmup_epochs=(warmup + 0.5) / total_steps if warmup else 0.0,
            power=0.9,
        )
    if step:
        with warnings.catch_warnings():  # "step() before optimizer.step()": we are only fast-forwarding
            warnings.simplefilter("ignore")
            scheduler.last_epoch = step - 1
            scheduler.step()
    return scheduler


def _finish_plots(run: Run, model, val_split, classes, config, device, size, mean, std, ignore, memory_format) -> None:
    """Learning curves and a few validation images with the best model's masks, in plots/."""
    import torch

    from mltoolkit.segment.visual import plot_examples

    records = run.read_metrics()
    plot_curves(
        run.plots / "curves.png",
        records,
        "epoch",
        [("train_loss", "val_loss"), ("miou", "pixel_accuracy")],
        title=f"{config.model} on {Path(config.data).name}",
    )
    best = run.checkpoints / "best.pt"
    if best.exists():
        model.load_state_dict(load_checkpoint(best, SEGMENT.name)["state"]["model"])
    model.eval()
    examples = []
    dataset = PairDataset(val_split, classes, size, mean, std, ignore, train=False)
    with torch.inference_mode():
        for index in sorted({round(i * (len(dataset) - 1) / 3) for i in range(4)}):
            image, mask = dataset[index]
            logits = model(image[None].to(device, memory_format=memory_format))["out"]
            shown = (image * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)).clamp(0, 1)
            examples.append((shown.permute(1, 2, 0).numpy(), mask.numpy(), logits.argmax(1)[0].cpu().numpy()))
    if examples:
        plot_examples(run.plots / "val_examples.png", examples, classes.colors, ignore, title="validation (best.pt)")


def _describe(record: dict[str, Any], planned: int) -> str:
    text = (
        f"epoch {record['epoch']}/{planned}  loss {record['train_loss']:.4f}  {record['train_images_per_s']:.1f} img/s"
    )
    if record.get("miou") is not None:
        text += f"  val mIoU {record['miou']:.4f}  pixel acc {record['pixel_accuracy']:.4f}"
    return text


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    return values[len(values) // 2] if values else None


def _default_name(config: SegmentConfig) -> str:
    return f"{Path(config.data).name or 'data'}-{config.model.split('_')[0]}"
