"""Data-parallel training under ``torchrun``: the same command on N processes, rank 0 alone writes.

``torchrun --nproc_per_node N -m mltoolkit segment train ...`` starts N copies of the command with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set. Each copy takes its own GPU (gloo on CPU), trains on
its shard of every epoch, DDP averages the gradients, validation is split across the copies and its
sums are added up, and only rank 0 writes the run directory, logs and prints. Started without
torchrun, ``World()`` has one process and every helper here is a no-op, so single-process code paths
are unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mltoolkit.core.errors import MltkError, UsageError

if TYPE_CHECKING:
    import torch

    from mltoolkit.core.runs import Run

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1  # processes on this machine, which share its cores

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_world() -> World:
    """The process group torchrun describes in the environment (one process when not under torchrun)."""
    return World(
        rank=int(os.environ.get("RANK", 0)),
        size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        local_size=int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", 1))),
    )


def cores_per_process(world: World) -> int:
    """This process's share of the machine's cores: torchrun's processes on one machine split them."""
    from mltoolkit.core.device import available_cores

    return max(1, available_cores() // max(1, world.local_size))


def plan_cores(threads: int | None, workers: int | None, world: World) -> tuple[int, int]:
    """Torch threads (set here) and DataLoader workers for this process, out of its share of the cores: workers
    first (one per spare core, at most 8), threads for the cores left beside them (2 torch threads beside a busy
    worker on 2 cores ran segment's training 5x slower). Either count can be given instead (0 threads: the rule)."""
    from mltoolkit.core.device import dataloader_workers, set_threads

    share = cores_per_process(world)
    workers = dataloader_workers(workers if workers is not None else min(8, share - 1))
    return set_threads(threads or max(1, share - workers)), workers


def join(world: World, device: torch.device) -> torch.device:
    """Join the process group (NCCL on CUDA, gloo on CPU); on CUDA each process takes GPU ``LOCAL_RANK``.
    Non-main processes go quiet: one progress bar and one result, from rank 0."""
    if not world.distributed:
        return device
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"torchrun runs on CUDA (NCCL) or the CPU (gloo), not {device.type}: pass --device cpu")
    import torch
    import torch.distributed as dist

    from mltoolkit.core.console import set_quiet

    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if not world.is_main:
        set_quiet(True)
    return device


def leave(world: World) -> None:
    """Leave the process group. The training objects are collected first: a DDP model held by a reference cycle
    was otherwise freed at interpreter exit, after the group, and aborted rank 0 (SIGABRT, "terminate called
    without an active exception") in about one torchrun run in ten, after its result was written."""
    if world.distributed:
        import gc

        import torch.distributed as dist

        if dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DDP around ``model`` (it starts every process from rank 0's weights); the model itself otherwise."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP: what checkpoints hold, so they load with or without torchrun."""
    return getattr(model, "module", model)


def train_sampler(dataset: Any, world: World, seed: int) -> Any:
    """Each process's shuffled shard of an epoch (``set_epoch`` reshuffles); None on one process."""
    if not world.distributed:
        return None
    from torch.utils.data import DistributedSampler

    return DistributedSampler(
        dataset, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed, drop_last=True
    )


def shard(dataset: Any, world: World) -> Any:
    """Every ``size``-th item from ``rank`` on: an evaluation split with no item padded in or counted twice."""
    if not world.distributed:
        return dataset
    from torch.utils.data import Subset

    return Subset(dataset, range(world.rank, len(dataset), world.size))


def all_sum(tensor: torch.Tensor, world: World, device: torch.device) -> torch.Tensor:
    """``tensor`` summed over all processes (through ``device``: NCCL reduces GPU tensors only)."""
    if not world.distributed:
        return tensor
    import torch.distributed as dist

    reduced = tensor.to(device)
    dist.all_reduce(reduced)
    return reduced.to(tensor.device)


def from_main(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every process, for decisions that must agree (plans, paths, stopping)."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(world: World, action: Callable[[], T]) -> T:
    """``action()`` run by rank 0 alone, its result on every process; its error raised on every process
    (so all of them exit with the same message and code instead of waiting for rank 0)."""
    if not world.distributed:
        return action()
    outcome: tuple[bool, Any] | None = None
    if world.is_main:
        try:
            outcome = (True, action())
        except MltkError as exc:
            outcome = (False, exc)
    done, value = from_main(outcome, world)
    if not done:
        raise value
    return value


def start_run_on_main(world: World, *args: Any, **kwargs: Any) -> tuple[Run, bool]:
    """``core.runs.start_run`` on rank 0 alone; every process gets the Run (only rank 0 writes through it)."""
    from mltoolkit.core.runs import Run, start_run

    def open_run() -> tuple[str, bool]:
        run, resumed = start_run(*args, **kwargs)
        return str(run.path), resumed

    path, resumed = on_main(world, open_run)
    return Run(Path(path)), resumed
