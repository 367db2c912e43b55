"""Choosing the device, seeding every random generator, and setting thread counts deliberately.

The thread helpers matter on small shared machines: OpenMP and BLAS pools sized to every core
oversubscribe a busy box (LightGBM ran 4x slower with 2 threads than with 1 under load), so mltk
defaults to the cores this process may actually use and lets the user choose.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from mltoolkit.core.errors import DataError, ResourceError

if TYPE_CHECKING:
    import torch

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a ``torch.device``; ``auto`` prefers CUDA, then MPS."""
    spec = spec.strip().lower()
    if not _DEVICE_PATTERN.match(spec):
        raise DataError(f"unknown device {spec!r}; expected auto, cpu, cuda, cuda:N or mps")
    import torch

    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ResourceError("CUDA is not available here; use --device cpu or auto")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ResourceError(
                f"CUDA device {index} does not exist here ({torch.cuda.device_count()} found); "
                "use --device cuda:0 or auto"
            )
        return torch.device(spec)
    if spec == "mps" and not _mps_available():
        raise ResourceError("MPS is not available here; use --device cpu or auto")
    return torch.device(spec)


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and (if it is imported) torch; optionally ask torch for determinism."""
    import sys

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False


def available_cores() -> int:
    """The cores this process may run on (CPU affinity, cgroup-limited containers included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None) -> int:
    """``None`` or 0 means every core this process may use; more than that is capped there (native pools
    allocate per thread: implicit crashed at 100000); a negative count is refused."""
    if threads is None or threads == 0:
        return available_cores()
    if threads < 0:
        raise DataError(f"--threads must be positive (got {threads})")
    return min(threads, available_cores())


def set_threads(threads: int | None) -> int:
    """Size the BLAS/OpenMP pools (and torch's, if imported) to ``threads``; return the count used.

    torch also flushes subnormal floats to zero: an x86 core computes on them about 30x slower, and
    Adam's second moments of weights that stop getting gradients decay into that range (a quarter of
    a DQN Pong run's time went to Adam steps over them). Values under 1e-38 matter to no model here.
    """
    import sys

    count = resolve_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=count)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(count)
        torch.set_flush_denormal(True)
    return count


def dataloader_workers(requested: int | None = None) -> int:
    """DataLoader worker processes: as asked, else one per spare core (at most 8), 0 on one core."""
    if requested is not None:
        if requested < 0:
            raise DataError(f"--workers must be 0 or more (got {requested})")
        return requested
    return min(8, available_cores() - 1)


def available_memory() -> int | None:
    """Bytes of memory a new allocation can have without swapping (``MemAvailable``); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: int, what: str, largest: Callable[[int], str]) -> None:
    """Refuse an option whose memory would not fit before it is allocated (exit 3, not an OOM kill later).

    ``largest(available)`` says in the option's own terms what would fit, e.g. ``"--buffer-size 2400000"``.
    """
    available = available_memory()
    if available is not None and needed > available:
        raise DataError(
            f"{what} needs {needed / 2**30:.1f} GiB but {available / 2**30:.1f} GiB of memory is available; "
            f"at most {largest(available)} fits"
        )
