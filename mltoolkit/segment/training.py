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
from dataclasses import replace
from pathlib import Path
from typing import Any

from mltoolkit.core.checkpoint import load_checkpoint, save_checkpoint
from mltoolkit.core.config import config_dict
from mltoolkit.core.console import info, progress, warn
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


def train(
    config: SegmentConfig, *, runs_dir: str | Path = "runs", name: str | None = None, resume: str | None = None
) -> dict[str, Any] | None:
    """Train a segmentation model and write a run directory; returns the headline result (None on the
    processes other than rank 0 under torchrun)."""
    world = launched_world()
    try:
        return _train(config, world, runs_dir=runs_dir, name=name, resume=resume)
    finally:
        leave(world)


def _train(config: SegmentConfig, world: World, *, runs_dir: str | Path, name: str | None, resume: str | None):
    started = time.monotonic()
    check_config(config)
    import torch

    # threads + worker processes = cores (shared by the torchrun processes): 2 torch threads beside a busy
    # worker on 2 cores ran 5x slower
    workers = config.workers if config.workers is not None else dataloader_workers(None)
    threads = set_threads(config.threads or max(1, cores_per_process(world) - workers))
    device = join(world, resolve_device(config.device))
    seed_everything(config.seed, config.deterministic)
    size = parse_size(config.size)

    layout = find_layout(config.data)
    train_pairs = list_pairs(layout, "train")
    val_pairs = list_pairs(layout, "val") if "val" in layout.splits else None
    if val_pairs is None:  # hold out every tenth image, so best.pt and early stopping have something to watch
        val_pairs, train_pairs = train_pairs[::10], [p for i, p in enumerate(train_pairs) if i % 10]
        warn(f"{layout.root}: no val split; holding out {len(val_pairs)} training images for validation")
    classes, ignore = prepare_classes(layout, config, train_pairs, threads + workers)
    config = resolve(config, layout, ignore, len(train_pairs))
    if MODELS[config.model] in SLOW_ON_CPU and device.type == "cpu":
        warn(f"{config.model} trains at about 0.5 images/s at 256x256 on 2 CPU cores; lraspp_mobilenet_v3_large ~8")

    info(
        f"reading {len(train_pairs)} training and {len(val_pairs)} validation pairs from {layout.root} ({layout.kind})"
    )
    train_split = load_split(train_pairs, classes, len(classes), ignore, threads + config.workers)
    check_labels(train_split, classes, ignore)
    val_split = load_split(val_pairs, classes, len(classes), ignore, threads + config.workers)
    if len(train_pairs) < config.batch_size:
        raise DataError(
            f"{layout.root}: {len(train_pairs)} training images, fewer than --batch-size {config.batch_size}"
        )

    mean, std = normalization(config)
    train_set = PairDataset(
        train_split, classes, size, mean, std, ignore, train=True, scale=config.scale, cache=config.cache
    )
    val_set = PairDataset(val_split, classes, size, mean, std, ignore, train=False, cache=config.cache)
    loader_args = {"batch_size": config.batch_size, "workers": config.workers, "device": device}
    generator = torch.Generator().manual_seed(config.seed)
    sampler = train_sampler(train_set, world, config.seed)
    train_loader = data_loader(
        train_set, shuffle=True, drop_last=True, generator=generator, sampler=sampler, **loader_args
    )
    val_loader = data_loader(shard(val_set, world), **loader_args)

    model = build_model(config, len(classes), pretrained=resume is None).to(device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    scaler = grad_scaler(device, config.amp)
    weights = class_weights(config.class_weights, train_split.counts)
    criterion = SegmentationLoss(
        config.loss, ignore, torch.tensor(weights, device=device) if weights is not None else None
    )
    stopper = EarlyStopping(config.patience, "max")

    max_epochs = config.epochs or (DEFAULT_EPOCHS if config.time_budget is None else 10**6)
    steps_per_epoch = len(train_loader)
    meta = {
        "class_names": classes.names,
        "class_colors": [list(c) for c in classes.colors],
        "class_values": classes.values,
        "mean": list(mean),
        "std": list(std),
        "layout": layout.kind,
    }
    checkpoint_config = {**config_dict(config), **meta}
    run, resumed = start_run_on_main(  # rank 0 creates (or reopens) the run; only rank 0 writes to it
        world,
        SEGMENT.name,
        config_dict(config),
        name=name or _default_name(config),
        runs_dir=runs_dir,
        resume=resume,
        device=str(device),
        seed=config.seed,
    )
    epoch, step, elapsed_before = 0, 0, 0.0
    max_steps = max_epochs * steps_per_epoch
    planned = max_steps if config.time_budget is None else min(max_epochs, 100) * steps_per_epoch  # steps; re-planned
    if resumed:
        payload = load_checkpoint(run.checkpoints / "last.pt", SEGMENT.name)
        state = payload["state"]
        if state["num_classes"] != len(classes):
            raise DataError(f"{run.path}: trained for {state['num_classes']} classes, the data has {len(classes)}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        stopper.load_state_dict(state["early_stopping"])
        set_rng_state(state["rng"])
        generator.set_state(state["loader_rng"])
        epoch, step, elapsed_before = state["epoch"], state["step"], state["elapsed"]
        if config.time_budget is not None:
            planned = max(step, min(max_steps, state["planned_steps"]))
        if world.is_main:
            run.rewrite_metrics([r for r in run.read_metrics() if r.get("epoch", 0) <= epoch])
        info(f"resuming {run.path} after epoch {epoch}")
    net = wrap(model, world, device)  # after any resume: DDP starts every process from rank 0's weights
    scheduler = _scheduler_at(config, optimizer, planned, steps_per_epoch, step)
    info(
        f"training {config.model} on {device} ({len(classes)} classes, {config.size}, batch {config.batch_size}, "
        + (f"time budget {config.time_budget:g} min" if config.time_budget else f"{max_epochs} epochs")
        + (f", {world.size} processes" if world.distributed else "")
        + f") -> {run.path}"
    )

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - started

    def over_budget() -> bool:
        over = elapsed() > budget - FINAL_RESERVE_S - validation_time(val_time, step_time, len(val_loader))
        if world.distributed and budget < math.inf:  # every process must stop at the same step
            over = bool(all_sum(torch.tensor(float(over)), world, device) > 0)
        return over

    def save(path: Path, metrics: dict[str, Any]) -> None:
        if not world.is_main:
            return
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "early_stopping": stopper.state_dict(),
            "rng": rng_state(),
            "loader_rng": generator.get_state(),
            "epoch": epoch,
            "step": step,
            "planned_steps": planned,
            "elapsed": elapsed(),
            "num_classes": len(classes),
        }
        save_checkpoint(path, technique=SEGMENT.name, config=checkpoint_config, state=state, metrics=metrics)

    budget = config.time_budget * 60 if config.time_budget else math.inf
    last_record: dict[str, Any] = {}
    val_time: float | None = None  # seconds one validation took, once one has run
    step_time = 0.0  # seconds per training step in the current epoch

    status = "completed"
    try:
        while step < planned:
            epoch_start, first_step = time.monotonic(), step
            if sampler is not None:
                sampler.set_epoch(epoch)
            net.train()
            loss_sum, images_seen, train_time = torch.zeros((), device=device), 0, 0.0
            with progress(steps_per_epoch, f"epoch {epoch + 1}/{-(-planned // steps_per_epoch)}") as bar:
                tick = shown = time.monotonic()
                for images, masks in train_loader:
                    images = images.to(device, non_blocking=True, memory_format=memory_format)
                    masks = masks.to(device, non_blocking=True)
                    with autocast(device, config.amp):
                        loss = criterion(net(images), masks)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    step += 1
                    loss_sum += loss.detach() * images.shape[0]  # read once a second at most: .item() syncs CUDA
                    images_seen += images.shape[0]
                    if time.monotonic() - shown > 1.0:
                        shown = time.monotonic()
                        bar.advance(1, loss=loss_sum.item() / images_seen, lr=optimizer.param_groups[0]["lr"])
                    else:
                        bar.advance(1)
                    step_time = (time.monotonic() - tick) / (step - first_step)
                    if step >= planned or over_budget():
                        break
                train_time = time.monotonic() - tick
            epoch += 1
            loss_total, images_total = all_sum(
                torch.stack([loss_sum, torch.tensor(float(images_seen), device=device)]), world, device
            )
            record: dict[str, Any] = {
                "epoch": epoch,
                "step": step,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": loss_total.item() / max(1.0, images_total.item()),
                "train_images_per_s": images_total.item() / max(train_time, 1e-9),  # all processes together
            }
            out_of_time = over_budget()
            if epoch % config.eval_every == 0 or step >= planned or out_of_time:
                val_start = time.monotonic()
                record.update(
                    validate(model, val_loader, criterion, len(classes), ignore, device, config, memory_format, world)
                )
                val_time = time.monotonic() - val_start
                if record["miou"] is not None and stopper.improved(record["miou"]):
                    record["best"] = True
                    save(run.checkpoints / "best.pt", record)
            record["epoch_time_s"] = time.monotonic() - epoch_start
            record["elapsed_s"] = elapsed()
            if world.is_main:
                run.log(record)
            last_record = record
            info(_describe(record, -(-planned // steps_per_epoch)))
            if config.time_budget and step < planned:  # re-plan: as many more steps as the remaining time holds
                more = (
                    0
                    if out_of_time
                    else steps_that_fit(
                        budget - elapsed() - FINAL_RESERVE_S,
                        step_time,
                        validation_time(val_time, step_time, len(val_loader)),
                        steps_per_epoch,
                        config.eval_every,
                    )
                )
                new_plan = from_main(min(max_steps, step + more), world)
                if new_plan != planned:
                    planned = new_plan
                    scheduler = _scheduler_at(config, optimizer, planned, steps_per_epoch, step)
            save(run.checkpoints / "last.pt", record)
            if stopper.should_stop:
                info(f"early stopping: val mIoU has not improved for {config.patience} evaluations")
                status = "early_stopped"
                break
    except KeyboardInterrupt:
        save(run.checkpoints / "last.pt", last_record)
        if world.is_main:
            _write_summary(run, "interrupted", stopper, last_record, elapsed())
        raise

    if not world.is_main:
        return None
    _finish_plots(run, model, val_split, classes, config, device, size, mean, std, ignore, memory_format)
    summary = _write_summary(run, status, stopper, last_record, elapsed())
    return {
        "run_dir": str(run.path),
        "best_val_miou": summary["best"].get("miou"),
        "best_epoch": summary["best"].get("epoch"),
        "val_pixel_accuracy": summary["best"].get("pixel_accuracy"),
        "epochs": epoch,
        "train_images_per_s": _median([r["train_images_per_s"] for r in run.read_metrics()]),
        "wall_time_s": round(elapsed(), 1),
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


def _write_summary(run: Run, status: str, stopper: EarlyStopping, last: dict[str, Any], wall: float) -> dict:
    best = next((r for r in run.read_metrics() if r.get("best") and r.get("miou") == stopper.best), {})
    summary = {
        "status": status,
        "headline": {"metric": "val_miou", "value": stopper.best},
        "best": {k: best.get(k) for k in ("epoch", "miou", "pixel_accuracy", "val_loss")},
        "final": last,
        "wall_time_s": round(wall, 2),
        "best_checkpoint": str(run.checkpoints / "best.pt"),
    }
    run.write_summary(summary)
    return summary


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
