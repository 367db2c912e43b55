"""Learning curves and confusion matrices as PNG files, drawn off-screen and written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mltoolkit.core.io import atomic_path


def figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, Any]:
    """A matplotlib figure on the off-screen backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)


def save_figure(fig: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.tight_layout()
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return Path(path)


def plot_curves(
    path: str | Path, records: Sequence[dict[str, Any]], x: str, panels: Sequence[Sequence[str]], title: str = ""
) -> Path | None:
    """One panel per group of metric keys, each drawn against ``x`` where the record has it."""
    panels = [keys for keys in panels if any(k in r for r in records for k in keys)]
    if not panels:
        return None
    fig, axes = figure(1, len(panels))
    for ax, keys in zip(axes[0], panels):
        for key in keys:
            points = [(r[x], r[key]) for r in records if x in r and r.get(key) is not None]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, label=key, marker="o" if len(points) < 30 else None)
        ax.set_xlabel(x)
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_confusion(path: Path, classes: list[str], matrix: list[list[int]]) -> None:
    """Counts per (true, predicted) class, written in the cells where there are few enough classes to read."""
    size = max(4.0, 0.5 * len(classes) + 2)
    fig, axes = figure(1, 1, (size, size))
    ax = axes[0][0]
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max(max(row) for row in matrix) or 1
    if len(classes) <= 30:
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    save_figure(fig, path)
