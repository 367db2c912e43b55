"""Generic pieces of a torch training loop shared by the image techniques (transfer, segment).

Kept deliberately small: mixed precision that is on only where it helps (CUDA), one DataLoader
setup, learning-rate schedules stepped once per iteration (so warmup and poly decay are smooth and
resume exactly), the random-generator state a resumed run needs, and early stopping. The loops
themselves stay in each technique, plain and readable like torchvision's reference scripts.
"""

from __future__ import annotations

import math
import random
import re
import warnings
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mltoolkit.core.errors import DataError

if TYPE_CHECKING:
    import torch

Schedule = Literal["step", "cosine", "onecycle", "poly", "constant"]


def autocast(device: torch.device, enabled: bool) -> AbstractContextManager[Any]:
    """fp16 autocast on CUDA when asked; a no-op elsewhere (CPU autocast is slower for these models)."""
    import torch

    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return nullcontext()


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """The loss scaler fp16 autocast needs; disabled (a pass-through) off CUDA."""
    import torch

    enabled = enabled and device.type == "cuda"
    if enabled:  # the scaler skips optimizer.step() where gradients overflowed (the first steps, by design),
        # and torch then warns on stderr that the schedule stepped first: expected, not the user's problem
        warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))
    return torch.amp.GradScaler("cuda", enabled=enabled)


def data_loader(
    dataset: Any,
    *,
    batch_size: int,
    workers: int,
    device: torch.device,
    shuffle: bool = False,
    drop_last: bool = False,
    sampler: Any = None,
    generator: torch.Generator | None = None,
    collate_fn: Any = None,
) -> torch.utils.data.DataLoader:
    """A DataLoader with persistent workers (no re-spawn, and worker-side caches survive, across epochs)
    and pinned memory for CUDA."""
    import torch

    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        generator=generator,
    )


def stop_workers(*loaders: Any) -> None:
    """Stop the persistent workers of these DataLoaders (or of loaders a wrapper holds as ``.loader``) now.

    Left to the interpreter's exit, torch joins each worker with a 5 s timeout that the workers can run out
    (pytorch/pytorch#81794, with pinned memory): 41 s after a short CUDA run with 4 workers, measured on an H200."""
    for loader in loaders:
        loader = getattr(loader, "loader", loader)
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None:
            loader._iterator = None
            iterator._shutdown_workers()


def make_scheduler(
    name: Schedule,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0.0,
    step_size: int = 7,
    gamma: float = 0.1,
    power: float = 0.9,
) -> torch.optim.lr_scheduler.LRScheduler:
    """A schedule stepped once per iteration, with optional linear warmup.

    ``step``: multiply by ``gamma`` every ``step_size`` epochs (the transfer-learning tutorial);
    ``cosine``: cosine decay to 0; ``poly``: ``(1 - t)^power`` (torchvision's segmentation
    reference); ``onecycle``: torch's OneCycleLR peaking at the optimizer's lr; ``constant``.
    """
    import torch

    total = max(1, epochs * steps_per_epoch)
    if name == "onecycle":
        peak = [group["lr"] for group in optimizer.param_groups]
        start = warmup_epochs / epochs if warmup_epochs > 0 else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peak, total_steps=total, pct_start=min(max(start, 0.01), 0.99)
        )
    warmup = int(warmup_epochs * steps_per_epoch)

    def decay(step: int) -> float:
        if name == "step":
            return gamma ** ((step // steps_per_epoch) // step_size)
        progress = min(1.0, max(0, step - warmup) / max(1, total - warmup))
        if name == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if name == "poly":
            return (1 - progress) ** power
        if name == "constant":
            return 1.0
        raise DataError(f"unknown schedule {name!r}; expected step, cosine, onecycle, poly or constant")

    def factor(step: int) -> float:
        ramp = (step + 1) / warmup if step < warmup else 1.0
        return ramp * decay(step)

    factor(0)  # an unknown name fails here, not at the first optimizer step
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def load_scheduler_state(scheduler: Any, state: dict[str, Any]) -> None:
    """Resume a schedule where it stopped, on the length it was built with now: OneCycleLR keeps its
    length in its state, and a run resumed with more ``--epochs`` must not run past the old end."""
    total = getattr(scheduler, "total_steps", None)
    scheduler.load_state_dict(state)
    if total is not None:
        scheduler.total_steps = total


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch generator states as tensors and plain values (``weights_only``-safe)."""
    import torch

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved, so a resumed run draws the numbers it would have drawn."""
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class EarlyStopping:
    """Stop when the monitored metric has not improved for ``patience`` evaluations (0 = never stop)."""

    def __init__(self, patience: int, mode: Literal["max", "min"] = "max", best: float | None = None) -> None:
        self.patience, self.mode = patience, mode
        self.best = best
        self.bad_rounds = 0

    def improved(self, value: float) -> bool:
        """Record ``value``; True when it is the best so far (save ``best.pt`` then)."""
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best, self.bad_rounds = value, 0
        else:
            self.bad_rounds += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_rounds >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_rounds": self.bad_rounds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_rounds = state["best"], state["bad_rounds"]
