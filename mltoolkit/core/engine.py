"""The torch training engine of the image techniques (transfer, segment), shaped like torchvision's reference scripts.

``train_one_epoch`` and ``evaluate`` are plain functions and ``fit`` is the one loop around them. A technique hands
``fit`` a small task object (``Task``: the model, the loaders, the loss, the validation metrics); the rest is here,
once: fp16 autocast + GradScaler and channels_last on CUDA, gradient clipping, a learning-rate schedule stepped per
iteration, DDP under torchrun (each process seeded with seed + rank; rank 0 alone writes), a wall-clock budget,
``last.pt`` every epoch and ``best.pt`` at each better validation score, resume, early stopping, Ctrl-C and SIGTERM
(``last.pt`` holds the last finished epoch; the root CLI exits 130 / 143), one ``metrics.jsonl`` row per epoch and
the summary.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.checkpoint import load_checkpoint, save_checkpoint
from mltoolkit.core.config import config_dict
from mltoolkit.core.console import info, progress
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.distributed import (
    World,
    all_sum,
    from_main,
    join,
    leave,
    shard,
    start_run_on_main,
    train_sampler,
    wrap,
)
from mltoolkit.core.errors import DataError
from mltoolkit.core.params import RunOptions, param
from mltoolkit.core.runs import Run, resumed_config
from mltoolkit.core.training import (
    EarlyStopping,
    autocast,
    data_loader,
    grad_scaler,
    make_scheduler,
    rng_state,
    set_rng_state,
    stop_workers,
)

if TYPE_CHECKING:
    import torch

FINAL_RESERVE_S = 5.0  # kept back from a time budget for the plots and the summary
VAL_BATCH_COST = 0.6  # a validation batch against a training step (forward only; 0.45 measured on CPU)
RECIPE, MACHINE = "Training recipe", "Machine"  # the --help panels of the train options


@dataclass
class EngineOptions(RunOptions):
    """The options the engine reads alike for transfer and segment; each Config inherits them (and declares its own
    epochs, optimizer, lr, weight_decay, schedule and warmup_epochs, whose defaults are its recipe's)."""

    momentum: float = param(0.9, "SGD momentum.", ge=0, lt=1, panel=RECIPE)
    time_budget: float | None = param(
        None, "Wall-clock minutes for the whole command; epochs are planned to fit and the LR decays to 0 at the end.",
        gt=0, panel=RECIPE,
    )  # fmt: skip
    eval_every: int = param(1, "Validate every N epochs (and after the last).", ge=1, panel=RECIPE)
    clip_grad_norm: float | None = param(None, "Clip the gradients' total norm to this.", gt=0, panel=RECIPE)
    patience: int = param(0, "Stop after this many validations without a better score; 0 = never.", ge=0, panel=RECIPE)
    amp: bool = param(True, "Mixed precision (fp16 autocast) on CUDA.", panel=MACHINE)
    device: str = param("auto", "auto, cpu, cuda, cuda:N or mps. auto picks CUDA, then MPS, then CPU.", panel=MACHINE)
    seed: int = param(0, "Seed for every random generator (the data split's too).", ge=0, panel=MACHINE)
    deterministic: bool = param(
        False, "Ask for deterministic algorithms (slower; bit-identical reruns).", panel=MACHINE
    )
    workers: int | None = param(
        None, "DataLoader worker processes (images are decoded and augmented there).", ge=0,
        default_text="one per spare core, at most 8 (under torchrun: of this process's share)", panel=MACHINE,
    )  # fmt: skip
    threads: int | None = param(
        None, "CPU threads for torch.", ge=0, default_text="the cores left beside the workers, as 0 does", panel=MACHINE
    )


class Task:
    """What a technique gives ``fit``: a subclass sets the model and the loaders (``set_loaders``) and writes the
    five methods; the rest has defaults. ``config`` is the technique's Config: the engine reads epochs, time_budget,
    eval_every, seed, device, optimizer, lr, momentum, weight_decay, schedule, warmup_epochs, patience,
    clip_grad_norm, amp and channels_last (and step_size and gamma where it has them)."""

    technique: str
    monitor: str  # the validation metric that picks best.pt and stops early (higher is better)
    headline: str  # its name in summary.json and `mltk runs list`
    model: torch.nn.Module  # what trains (DDP wraps it under torchrun); last.pt holds its weights
    train_loader: Any  # (inputs, targets) batches, with len(): the steps of an epoch
    val_loader: Any  # this process's share of the validation split
    default_epochs: int  # without --epochs or --time-budget
    sampler: Any = None  # a DistributedSampler under torchrun (set_epoch each epoch)
    generator: torch.Generator | None = None  # the shuffling generator, seeded from (seed, epoch, rank) each epoch
    train_accuracy = False  # count argmax hits in training (classification)
    defer_best = False  # keep the best weights in memory and write best.pt at the end (cheap epochs)
    description = ""  # one line for the log: model, data, device

    def __init__(self, config: Any, device: torch.device) -> None:
        self.config, self.device, self.eval_every = config, device, config.eval_every
        self.time_budget = config.time_budget * 60 if config.time_budget else None  # seconds, resumes included
        # at most this many epochs; with only a time budget, as many as fit
        self.epochs = config.epochs or (self.default_epochs if self.time_budget is None else 10**6)
        self.amp = config.amp and device.type == "cuda"  # fp16 autocast and NHWC memory: CUDA only
        self.channels_last = config.channels_last and device.type == "cuda"

    def set_loaders(
        self,
        train_set: Any,
        val_set: Any,
        world: World,
        *,
        weights: Any = None,
        drop_last: bool = False,
        **options: Any,
    ) -> None:
        """``train_loader`` over this process's shard (``sampler``: a DistributedSampler under torchrun), shuffled by
        ``generator`` (or drawn in proportion to per-sample ``weights``), and ``val_loader`` over its share of
        ``val_set``; ``options`` go to ``core.training.data_loader``. The engine reseeds both each epoch."""
        import torch

        self.generator = torch.Generator()
        self.sampler = train_sampler(train_set, world, self.config.seed)
        sampler = self.sampler
        if weights is not None:
            sampler = torch.utils.data.WeightedRandomSampler(weights, len(weights), generator=self.generator)
        self.train_loader = data_loader(
            train_set, shuffle=True, drop_last=drop_last, sampler=sampler, generator=self.generator, **options
        )
        self.val_loader = data_loader(shard(val_set, world), **options)

    def loss(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def val_sums(self, outputs: Any, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sums over a validation batch (added up over batches and processes), for ``val_metrics``."""
        raise NotImplementedError

    def val_metrics(self, sums: dict[str, torch.Tensor]) -> dict[str, Any]:
        raise NotImplementedError

    def inference_state(self) -> dict[str, Any]:
        """What best.pt holds for evaluate and predict."""
        raise NotImplementedError

    def plot(self, run: Run, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def checkpoint_config(self) -> dict[str, Any]:
        return config_dict(self.config)


def resumed_engine_config(
    ref: str | None, runs_dir: str | Path, technique: str, flags: dict[str, Any]
) -> dict[str, Any] | None:
    """``--resume``'s saved config (``core.runs.resumed_config``), less its time budget when --epochs is typed
    without a new --time-budget: more epochs asked, the old budget no longer applies."""
    saved = resumed_config(ref, runs_dir, technique)
    if saved is not None and flags["time_budget"] is None and flags["epochs"] is not None:
        saved["time_budget"] = None
    return saved


def result_line(result: TrainResult, monitor: str, **extra: Any) -> dict[str, Any]:
    """What ``train`` prints for transfer and segment: the run, its best and final score (the ``monitor`` key of the
    summary's rows), ``extra`` (the technique's own), the epochs and what they took."""
    summary, metric = result.summary, result.headline.get("metric")
    best, final = summary.get("best") or {}, summary.get("final") or {}
    return {
        "run_dir": str(result.run_dir),
        f"best_{metric}": result.headline.get("value"),
        "best_epoch": best.get("epoch", 0),
        f"final_{metric}": final.get(monitor),
        **extra,
        **{key: summary.get(key) for key in ("epochs", "epochs_run", "train_images_per_s", "wall_time_s")},
    }


@contextmanager
def session(world: World, config: Any) -> Iterator[torch.device]:
    """Join torchrun's process group (if any) on ``config.device``, seed this process with seed + rank (its own
    augmentation draws), and leave the group at the end."""
    import torch

    from mltoolkit.core.device import resolve_device, seed_everything

    device = join(world, resolve_device(config.device))
    try:
        seed_everything(config.seed + world.rank, config.deterministic)
        if device.type == "cuda" and not config.deterministic:
            torch.backends.cudnn.benchmark = True
        yield device
    finally:
        leave(world)


def to_device(inputs: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    import torch

    inputs = inputs.to(device, non_blocking=True)
    return inputs.contiguous(memory_format=torch.channels_last) if channels_last else inputs


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    images: int  # over every process
    seconds: float
    steps: int


def train_one_epoch(
    model: torch.nn.Module,
    batches: Any,
    task: Task,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    *,
    device: torch.device,
    title: str,
    world: World = World(),
    should_stop: Callable[[int, float], bool] | None = None,
) -> EpochStats:
    """One pass over ``batches`` of ``(inputs, targets)``, the schedule stepped per batch, cut short when
    ``should_stop(steps, seconds_per_step)``. Sums stay on the device (no sync per step) and are read about once a
    second for the progress bar and once at the end, added up over torchrun's processes."""
    import torch

    model.train()
    clip = task.config.clip_grad_norm
    sums = torch.zeros(3, device=device)  # loss, correct, images (float32: MPS has no float64)
    steps, start = 0, time.monotonic()
    shown = start
    with progress(len(batches), title) as bar:
        for inputs, targets in batches:
            inputs, targets = to_device(inputs, device, task.channels_last), targets.to(device, non_blocking=True)
            with autocast(device, task.amp):
                outputs = model(inputs)
                loss = task.loss(outputs, targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            steps += 1
            sums[0] += loss.detach() * len(targets)
            if task.train_accuracy:
                sums[1] += (outputs.detach().argmax(1) == targets).sum()
            sums[2] += len(targets)
            if time.monotonic() - shown > 1.0:  # .item() syncs CUDA: once a second at most
                shown = time.monotonic()
                loss_mean, accuracy, _ = (sums / sums[2].clamp(min=1)).tolist()
                shown_acc = {"acc": accuracy} if task.train_accuracy else {}
                bar.advance(1, loss=loss_mean, **shown_acc, lr=optimizer.param_groups[0]["lr"])
            else:
                bar.advance(1)
            if should_stop is not None and should_stop(steps, (time.monotonic() - start) / steps):
                break
    seconds = time.monotonic() - start
    loss_sum, correct, images = all_sum(sums, world, device).tolist()
    return EpochStats(loss_sum / max(images, 1), correct / max(images, 1), int(images), seconds, steps)


def evaluate(model: torch.nn.Module, batches: Any, task: Task, *, device: torch.device, world: World = World()) -> Any:
    """The task's validation metrics over ``batches``; under torchrun over every process's share (sums added up)."""
    import torch

    model.eval()
    sums: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for inputs, targets in batches:
            with autocast(device, task.amp):
                outputs = model(to_device(inputs, device, task.channels_last))
            for key, value in task.val_sums(outputs, targets.to(device, non_blocking=True)).items():
                sums[key] = sums[key] + value if key in sums else value
    return task.val_metrics({key: all_sum(value, world, device) for key, value in sums.items()})


def make_optimizer(config: Any, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    import torch

    parameters = [p for p in parameters if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)


def schedule_at(config: Any, optimizer: Any, total_steps: int, steps_per_epoch: int, step: int) -> Any:
    """The schedule over ``total_steps`` iterations from ``config.lr``, positioned at ``step`` (on start, on
    resume, and when a time budget re-plans the run: the decay still ends at the planned last step)."""
    for group in optimizer.param_groups:
        group.pop("initial_lr", None)
        group["lr"] = config.lr
    total_steps = max(1, total_steps)
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total_steps - 1)
    decay = {"step_size": getattr(config, "step_size", 7), "gamma": getattr(config, "gamma", 0.1)}
    if config.schedule == "step":  # decays every step_size epochs: epochs stay the unit
        epochs = -(-total_steps // steps_per_epoch)
        scheduler = make_scheduler(
            "step", optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch, warmup_epochs=warmup / steps_per_epoch,
            **decay,
        )  # fmt: skip
    else:  # one "epoch" of total_steps
        warmup_share = (warmup + 0.5) / total_steps if warmup else 0.0
        scheduler = make_scheduler(config.schedule, optimizer, epochs=1, steps_per_epoch=total_steps,
                                   warmup_epochs=warmup_share, **decay)  # fmt: skip
    if step:
        with warnings.catch_warnings():  # "step() before optimizer.step()": only fast-forwarding
            warnings.simplefilter("ignore")
            scheduler.last_epoch = step - 1
            scheduler.step()
    return scheduler


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


def run_task(
    task: Task, world: World, device: torch.device, *, runs_dir: str | Path, name: str, resume: str | None,
    started: float,
) -> TrainResult:  # fmt: skip
    """Open (or reopen) the run on rank 0, ``fit`` the task, and return rank 0's result on every process."""
    run, resumed = start_run_on_main(
        world, task.technique, config_dict(task.config), name=name, runs_dir=runs_dir, resume=resume,
        device=str(device), seed=task.config.seed,
    )  # fmt: skip
    processes = f", {world.size} processes" if world.distributed else ""
    info(f"{task.technique}: {task.description}{processes} -> {run.path}")
    try:
        return from_main(Loop(task, run, world, device, started).fit(resumed), world)
    finally:
        stop_workers(task.train_loader, task.val_loader)


class Loop:
    """Where a run stands (epoch, step, the planned steps, the best score) and the loop that moves it on."""

    def __init__(self, task: Task, run: Run, world: World, device: torch.device, started: float) -> None:
        self.task, self.run, self.world, self.device, self.started = task, run, world, device, started
        self.optimizer = make_optimizer(task.config, task.model.parameters())
        self.scaler = grad_scaler(device, task.amp)
        self.stopper = EarlyStopping(task.config.patience, "max")
        self.steps_per_epoch = max(1, len(task.train_loader))
        self.max_steps = task.epochs * self.steps_per_epoch
        # under a time budget: a first guess, re-planned after each epoch
        self.planned = self.max_steps if task.time_budget is None else min(task.epochs, 100) * self.steps_per_epoch
        self.budget = task.time_budget or math.inf
        self.epoch = self.step = self.best_epoch = 0
        self.elapsed_before, self.step_time = 0.0, 0.0
        self.val_time: float | None = None  # seconds one validation took, once one has run
        self.best_weights: dict[str, Any] | None = None  # with task.defer_best
        self.records: list[dict[str, Any]] = []

    def fit(self, resumed: bool) -> TrainResult | None:
        """Epochs until the planned steps are done (or early stopping); the result on rank 0, None elsewhere."""
        import torch

        task, world = self.task, self.world
        if world.distributed and all_sum(torch.tensor([float(len(task.val_loader) == 0)]), world, self.device) > 0:
            raise DataError("fewer validation images than torchrun processes")
        if resumed:
            self.resume()
        self.net = wrap(task.model, world, self.device)  # after any resume: DDP starts from rank 0's weights
        self.scheduler = schedule_at(task.config, self.optimizer, self.planned, self.steps_per_epoch, self.step)
        status = "completed"
        try:
            while self.step < self.planned and self.epoch < task.epochs:
                self.run_epoch()
                if self.stopper.should_stop:
                    info(f"early stop: {task.monitor} has not improved for {task.config.patience} evaluations")
                    status = "early_stopped"
                    break
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: last.pt already holds the last finished epoch
            if world.is_main:
                self.complete_best()
                self.finish("interrupted")
            raise
        if not world.is_main:
            return None
        self.complete_best()
        task.plot(self.run, self.records)
        return self.finish(status)

    def run_epoch(self) -> None:
        """Train one epoch, validate when due, log its metrics row, re-plan the budget, save the checkpoints."""
        task, started, epoch = self.task, time.monotonic(), self.epoch + 1
        if task.sampler is not None:
            task.sampler.set_epoch(epoch)
        if task.generator is not None:  # shuffling drawn from (seed, epoch): a resumed run shuffles as the whole one
            task.generator.manual_seed(task.config.seed * 1_000_003 + epoch + self.world.rank * 1_000_000_007)
        stats = train_one_epoch(
            self.net, task.train_loader, task, self.optimizer, self.scheduler, self.scaler, device=self.device,
            title=f"epoch {epoch}/{self.planned_epochs()}", world=self.world, should_stop=self.stop_mid_epoch,
        )  # fmt: skip
        self.epoch, self.step = epoch, self.step + stats.steps
        record: dict[str, Any] = {"epoch": epoch, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"]}
        record["train_loss"] = stats.loss
        if task.train_accuracy:
            record["train_acc"] = stats.accuracy
        record["train_images_per_s"] = round(stats.images / max(stats.seconds, 1e-9), 2)
        out_of_time = self.over_budget()
        if epoch % task.eval_every == 0 or self.step >= self.planned or epoch >= task.epochs or out_of_time:
            val_start = time.monotonic()
            record.update(evaluate(task.model, task.val_loader, task, device=self.device, world=self.world))
            self.val_time = time.monotonic() - val_start
            if record.get(task.monitor) is not None and self.stopper.improved(record[task.monitor]):
                record["best"], self.best_epoch = True, epoch
        record["epoch_time_s"] = round(time.monotonic() - started, 3)
        record["elapsed_s"] = round(self.elapsed(), 3)
        self.records.append(record)
        if self.world.is_main:
            self.run.log(record)
        info(describe(record, self.planned_epochs()))
        if task.time_budget and self.step < self.planned:
            self.replan(out_of_time)
        if record.get("best"):
            if task.defer_best:
                self.best_weights = {k: v.detach().clone() for k, v in task.model.state_dict().items()}
            else:
                self.save_best()
        self.save_last(record)

    def stop_mid_epoch(self, steps: int, step_time: float) -> bool:
        self.step_time = step_time
        return self.step + steps >= self.planned or self.over_budget()

    def replan(self, out_of_time: bool) -> None:
        """As many more steps as the remaining time holds (rank 0's plan on every process)."""
        val_time = validation_time(self.val_time, self.step_time, len(self.task.val_loader))
        remaining = self.budget - self.elapsed() - FINAL_RESERVE_S
        fit = 0 if out_of_time else steps_that_fit(remaining, self.step_time, val_time, self.steps_per_epoch,
                                                   self.task.eval_every)  # fmt: skip
        planned = from_main(min(self.max_steps, self.step + fit), self.world)
        if planned != self.planned:
            self.planned = planned
            self.scheduler = schedule_at(self.task.config, self.optimizer, planned, self.steps_per_epoch, self.step)

    def planned_epochs(self) -> int:
        return min(self.task.epochs, -(-self.planned // self.steps_per_epoch))

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def over_budget(self) -> bool:
        import torch

        if self.budget == math.inf:
            return False
        val_time = validation_time(self.val_time, self.step_time, len(self.task.val_loader))
        over = self.elapsed() > self.budget - FINAL_RESERVE_S - val_time
        if self.world.distributed:  # every process must stop at the same step
            over = bool(all_sum(torch.tensor(float(over)), self.world, self.device) > 0)
        return over

    def save(self, name: str, state: dict[str, Any], metrics: dict[str, Any]) -> None:
        if self.world.is_main:
            path = self.run.checkpoints / name
            save_checkpoint(path, technique=self.task.technique, config=self.task.checkpoint_config(), state=state,
                            metrics=metrics)  # fmt: skip

    def save_best(self) -> None:
        best = {"epoch": self.best_epoch, "step": self.step, "metric": self.stopper.best}
        self.save("best.pt", {**self.task.inference_state(), **best}, self.best_record())

    def save_last(self, record: dict[str, Any]) -> None:
        state = {
            "model": self.task.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "early_stopping": self.stopper.state_dict(),
            "rng": rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
            "planned_steps": self.planned,
            "elapsed": self.elapsed(),
        }
        self.save("last.pt", state, record)

    def resume(self) -> None:
        """Continue after the checkpoint ``Run.resume_checkpoint`` names; metrics rows logged after it go. ``last.pt``
        holds the whole training state; ``best.pt``, all a kill during the first save of ``last.pt`` leaves, holds
        the weights alone: training goes on from them with a fresh optimizer."""
        path = self.run.resume_checkpoint()
        state = load_checkpoint(path, self.task.technique)["state"]
        if "model" not in state or "epoch" not in state:
            raise DataError(f"{path}: holds no training state this mltk resumes (written by an older version?)")
        try:
            self.task.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise DataError(f"{path}: does not fit this run's model and data ({str(exc).splitlines()[0]})") from None
        self.epoch, self.step = state["epoch"], state.get("step", state["epoch"] * self.steps_per_epoch)
        if path.name == "best.pt":
            self.best_epoch = self.epoch
            if state.get("metric") is not None:
                self.stopper.improved(state["metric"])
        else:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            self.stopper.load_state_dict(state["early_stopping"])
            if self.world.is_main:  # rank 0's generators; the others keep their seeds (seed + rank)
                set_rng_state(state["rng"])
            self.best_epoch, self.best_weights = state.get("best_epoch", 0), state.get("best_weights")
            self.elapsed_before = state["elapsed"]
            if self.task.time_budget is not None:
                self.planned = max(self.step, min(self.max_steps, state["planned_steps"]))
        if self.world.is_main:
            self.run.keep_metrics_until("epoch", self.epoch)
        self.records = [r for r in self.run.read_metrics() if r.get("epoch", 0) <= self.epoch]
        info(f"resuming {self.run.path} after epoch {self.epoch} (from {path.name})")

    def best_record(self) -> dict[str, Any]:
        return next((r for r in self.records if r["epoch"] == self.best_epoch), {})

    def complete_best(self) -> None:
        """Write best.pt where it waits: kept in memory (``defer_best``), or no validation scored yet."""
        if self.best_weights is not None:
            self.task.model.load_state_dict(self.best_weights)
            self.best_weights = None
            self.save_best()
        elif not (self.run.checkpoints / "best.pt").exists() and self.records:
            self.save_best()

    def finish(self, status: str) -> TrainResult:
        """summary.json through ``Run.finish``; the monitored metric is the headline."""
        rates = sorted(r["train_images_per_s"] for r in self.records)
        return self.run.finish(
            status,
            {"metric": self.task.headline, "value": self.stopper.best},
            best=self.best_record(),
            final=self.records[-1] if self.records else None,
            wall_time_s=self.elapsed(),
            epochs=self.epoch,
            epochs_run=len(self.records),
            train_images_per_s=rates[len(rates) // 2] if rates else None,
            best_checkpoint="checkpoints/best.pt" if (self.run.checkpoints / "best.pt").exists() else None,
            **({"processes": self.world.size} if self.world.distributed else {}),
        )


def describe(record: dict[str, Any], epochs: int) -> str:
    """An epoch's status line: its losses and scores, speed and time."""
    hidden = ("epoch", "step", "lr", "best", "train_images_per_s", "epoch_time_s", "elapsed_s")
    scores = "  ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in hidden and isinstance(v, float))
    text = f"epoch {record['epoch']}/{epochs}  {scores}  {record['train_images_per_s']:.1f} img/s"
    return text + f"  {record['epoch_time_s']:.1f}s" + ("  *best*" if record.get("best") else "")
