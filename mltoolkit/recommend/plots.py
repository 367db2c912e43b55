"""Pictures of a run: the model's metrics beside popularity's, and the --tune search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltoolkit.core.plots import figure, save_figure

_BARS = ("precision", "precision_implicit", "recall", "map", "ndcg", "auc", "coverage")


def plot_metrics(path: Path, model: str, metrics: dict[str, float], baseline: dict[str, float], k: int) -> None:
    """Grouped bars, one pair per metric: how far the model is above the popularity baseline."""
    import numpy as np

    fig, axes = figure(size=(8.0, 4.0))
    ax = axes[0][0]
    x = np.arange(len(_BARS))
    ax.bar(x - 0.2, [metrics[m] for m in _BARS], 0.4, label=model)
    ax.bar(x + 0.2, [baseline[m] for m in _BARS], 0.4, label="popularity")
    ax.set_xticks(x, [f"{m}@{k}" if m not in ("auc", "coverage") else m for m in _BARS], rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(f"{model} vs popularity on the held-out split")
    save_figure(fig, path)


def plot_tune(path: Path, trials: list[dict[str, Any]]) -> None:
    """Validation NDCG of each trial, and the best so far."""
    import numpy as np

    fig, axes = figure()
    ax = axes[0][0]
    scores = [t["val_ndcg"] for t in trials]
    ax.plot([t["trial"] for t in trials], scores, "o", label="trial")
    ax.plot([t["trial"] for t in trials], np.maximum.accumulate(scores), "-", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation NDCG")
    ax.legend()
    save_figure(fig, path)
