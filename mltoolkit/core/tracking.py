"""TensorBoard events beside ``metrics.jsonl``: the same rows, one sink for all five techniques.

``--tensorboard`` on any ``train`` turns it on; ``Run.log`` then also writes each row here, under
``<run>/tb/``, so ``tensorboard --logdir runs`` shows every technique's runs side by side. A row's
step is its ``step``, ``epoch``, ``round``, ``iteration`` or ``trial``; its ``phase`` (if any)
prefixes the tags; every other number becomes a scalar.
"""

from __future__ import annotations

from numbers import Real
from pathlib import Path
from typing import Any

from mltoolkit.core.errors import ResourceError

STEP_KEYS = ("step", "epoch", "round", "iteration", "trial")
INSTALL = "pip install 'mltk[tensorboard]'"


def require_tensorboard() -> None:
    """Fail before anything is written when the optional extra is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ResourceError(f"--tensorboard needs the tensorboard package: {INSTALL}") from None


class TensorBoardSink:
    """Scalars of metrics rows, written as TensorBoard event files (flushed per row: a crash loses none)."""

    def __init__(self, folder: Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    def write(self, record: dict[str, Any]) -> None:
        step_key = next((k for k in STEP_KEYS if isinstance(record.get(k), Real)), None)
        step = int(record[step_key]) if step_key else None
        prefix = f"{record['phase']}/" if isinstance(record.get("phase"), str) else ""
        for key, value in _scalars(record):
            if key != step_key:
                self.writer.add_scalar(prefix + key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _scalars(record: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    """Numbers of a row, nested mappings flattened with ``/`` (``{"val": {"miou": 0.5}}`` -> ``val/miou``)."""
    out: list[tuple[str, float]] = []
    for key, value in record.items():
        if isinstance(value, dict):
            out += _scalars(value, f"{prefix}{key}/")
        elif isinstance(value, Real) and not isinstance(value, bool):
            out.append((f"{prefix}{key}", float(value)))
    return out
