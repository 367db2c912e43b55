"""What ``mltk env`` reports: versions, accelerators, thread counts."""

from __future__ import annotations

import platform
from typing import Any

from mltoolkit import __version__
from mltoolkit.core.device import available_cores
from mltoolkit.core.runs import package_versions


def describe_environment() -> dict[str, Any]:
    import torch
    from threadpoolctl import threadpool_info

    cuda = (
        [f"{i}: {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    pools = sorted({f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()})
    return {
        "mltk": __version__,
        "python": platform.python_version(),
        **{name: version or "not installed" for name, version in package_versions().items()},
        "cuda_devices": ", ".join(cuda) or "none",
        "mps": "available" if mps else "not available",
        "cores_usable": available_cores(),
        "torch_threads": torch.get_num_threads(),
        "thread_pools": ", ".join(pools),
    }
