"""One pass over the data: a training epoch, a scoring pass, and the feature cache.

The hot loop keeps per-batch work to what the tutorial's ``train_model`` does minus its two
``.item()`` synchronisations: loss and correct counts accumulate on the device and are read once
per epoch (and about once a second for the progress bar).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltoolkit.core.console import progress
from mltoolkit.core.training import autocast

if TYPE_CHECKING:
    import torch

BadHandler = Callable[[list[int]], None]
Reduce = Callable[["torch.Tensor"], "torch.Tensor"]  # a tensor summed over the processes (distributed.all_sum)


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    import torch

    images = images.to(device, non_blocking=True)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def train_epoch(
    model: torch.nn.Module,
    batches: Any,
    *,
    criterion: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    device: torch.device,
    amp: bool,
    channels_last: bool,
    on_bad: BadHandler,
    description: str,
    total: int,
    reduce: Reduce | None = None,
    empty_shape: tuple[int, ...] | None = None,
) -> EpochStats:
    """One epoch of SGD over ``batches`` of ``(images, labels, indices, bad)``; the schedule steps per batch.

    Under DDP (``reduce`` given: the epoch's sums are added over the processes, once, at the end)
    every process must take every step, since each backward is an all-reduce: a batch in which no
    image decodes is then run as an empty ``[0, *empty_shape]`` batch (zero gradient, BatchNorm
    statistics untouched) instead of being skipped.
    """
    import torch

    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen, start, shown = 0, time.perf_counter(), time.perf_counter()
    with progress(total, description) as bar:
        for images, labels, _, bad in batches:
            if bad:
                on_bad(bad)
            if len(labels) == 0:
                if empty_shape is None:
                    continue
                images = torch.zeros((0, *empty_shape))
            images = to_device(images, device, channels_last)
            labels = labels.to(device, non_blocking=True)
            with autocast(device, amp):
                logits = model(images)
                loss = criterion(logits, labels) if len(labels) else logits.sum()  # the mean of none is NaN
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach() * len(labels)
            correct += (logits.detach().argmax(1) == labels).sum()
            seen += len(labels)
            if time.perf_counter() - shown > 1.0:  # one sync a second at most, for the bar's numbers
                shown = time.perf_counter()
                bar.update(seen, loss=loss_sum.item() / seen, acc=correct.item() / seen, img_s=seen / (shown - start))
            else:
                bar.update(seen)
    seconds = time.perf_counter() - start
    if reduce is not None:
        sums = torch.stack([loss_sum.double(), correct.double(), torch.tensor(float(seen), device=device).double()])
        total_loss, total_correct, total_seen = reduce(sums).tolist()
        seen = int(total_seen)
        return EpochStats(total_loss / max(seen, 1), total_correct / max(seen, 1), seen, seconds)
    return EpochStats(loss_sum.item() / max(seen, 1), correct.item() / max(seen, 1), seen, seconds)


def score_batches(
    model: torch.nn.Module,
    batches: Any,
    *,
    device: torch.device,
    amp: bool,
    channels_last: bool,
    on_bad: BadHandler,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(logits, labels, indices)`` per batch on the CPU, in eval mode without gradients."""
    import torch

    model.eval()
    with torch.inference_mode():
        for images, labels, indices, bad in batches:
            if bad:
                on_bad(bad)
            if len(labels) == 0:
                continue
            with autocast(device, amp):
                logits = model(to_device(images, device, channels_last))
            yield logits.float().cpu(), labels, indices


def validate(
    model: torch.nn.Module,
    batches: Any,
    *,
    criterion: torch.nn.Module,
    reduce: Reduce | None = None,
    **kwargs: Any,
) -> tuple[float, float, int]:
    """Mean loss, accuracy and image count of a scoring pass (with ``reduce``: of every process's shard)."""
    loss_sum, correct, seen = 0.0, 0, 0
    for logits, labels, _ in score_batches(model, batches, **kwargs):
        loss_sum += float(criterion(logits, labels)) * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
    if reduce is not None:
        import torch

        total_loss, total_correct, total_seen = reduce(torch.tensor([loss_sum, correct, seen], dtype=torch.float64))
        loss_sum, correct, seen = float(total_loss), int(total_correct), int(total_seen)
    if seen == 0:
        return float("nan"), 0.0, 0
    return loss_sum / seen, correct / seen, seen


def extract_features(
    model: torch.nn.Module,
    head: torch.nn.Module,
    batches: Any,
    *,
    size: int,
    device: torch.device,
    amp: bool,
    channels_last: bool,
    on_bad: BadHandler,
    description: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's input for every image (the frozen backbone's features), and which images decoded.

    Returns ``(features [size, D] on the CPU, ok [size] bool)``; rows of images that failed are zero.
    """
    import torch

    captured: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda _m, inputs: captured.append(inputs[0].flatten(1)))
    features: torch.Tensor | None = None
    ok = torch.zeros(size, dtype=torch.bool)
    try:
        with progress(size, description) as bar:
            for _, _, indices in score_batches(
                model, batches, device=device, amp=amp, channels_last=channels_last, on_bad=on_bad
            ):
                batch = captured.pop().float().cpu()
                if features is None:
                    features = torch.zeros(size, batch.shape[1])
                features[indices] = batch
                ok[indices] = True
                bar.advance(len(indices))
    finally:
        handle.remove()
    if features is None:
        features = torch.zeros(size, 1)
    return features, ok
