"""Checkpoints: one self-describing file per saved model state, written atomically.

Payload: ``{format_version, mltk_version, technique, config, state, metrics}``. ``state`` holds
only tensors, numbers, strings and containers of them, so ``torch.load(weights_only=True)`` can
load it without running pickled code from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltoolkit import __version__
from mltoolkit.core.errors import DataError
from mltoolkit.core.io import atomic_path

FORMAT_VERSION = 1


def save_checkpoint(
    path: str | Path,
    *,
    technique: str,
    config: dict[str, Any],
    state: dict[str, Any],
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically: a crash mid-save keeps the previous file intact."""
    import torch

    path = Path(path)
    payload = {
        "format_version": FORMAT_VERSION,
        "mltk_version": __version__,
        "technique": technique,
        "config": config,
        "state": state,
        "metrics": metrics or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, technique: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint; anything unusable is a ``DataError`` naming the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise DataError(f"{path}: not a readable mltk checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or "format_version" not in payload or "state" not in payload:
        raise DataError(f"{path}: not an mltk checkpoint")
    if payload["format_version"] > FORMAT_VERSION:
        raise DataError(
            f"{path}: checkpoint format {payload['format_version']} is newer than this mltk reads "
            f"({FORMAT_VERSION}); upgrade mltk"
        )
    if technique is not None and payload.get("technique") != technique:
        raise DataError(f"{path}: is a {payload.get('technique')!r} checkpoint, not {technique!r}")
    return payload


def restore_model(model: Any, weights: dict[str, Any], path: Path, device: Any, name: str) -> Any:
    """``weights`` (a ``state_dict``) loaded into ``model``, moved to ``device``, in eval mode: what evaluate and
    predict run. Weights that do not fit the model ``name`` are a ``DataError`` naming the checkpoint."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped tensors
        raise DataError(f"{path}: weights do not fit {name} ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()


def run_checkpoint(ref: str | Path, runs_dir: str | Path, technique: str) -> tuple[Path, Path | None]:
    """The checkpoint a RUN argument names and its run directory (None for a file outside one): a run's
    ``best.pt`` (``last.pt`` where no validation has scored yet), or the checkpoint file itself."""
    from mltoolkit.core.runs import resolve_run

    path = resolve_run(ref, runs_dir, technique)
    if path.is_file():
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else None
        return path, run_dir if run_dir is not None and (run_dir / "config.json").exists() else None
    for name in ("best.pt", "last.pt"):
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name, path
    raise DataError(f"{path}: no checkpoints/best.pt or last.pt (did training reach its first evaluation?)")
