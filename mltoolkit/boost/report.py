"""Feature importance (gain and split counts) as importance.json and plots/importance.png."""

from __future__ import annotations

from typing import Any

from mltoolkit.boost.schema import Schema
from mltoolkit.core.io import write_json
from mltoolkit.core.plots import figure, save_figure
from mltoolkit.core.runs import Run

TOP = 20


def feature_names(schema: Schema) -> list[str]:
    return schema.names if schema.sparse_width is None else [f"f{i}" for i in range(schema.sparse_width)]


def write_importance(booster: Any, schema: Schema, run: Run) -> list[dict[str, Any]]:
    """Rank features by total gain; write the table and a bar chart of the top ones."""
    gain = booster.feature_importance(importance_type="gain")
    split = booster.feature_importance(importance_type="split")
    rows = [
        {"feature": name, "gain": float(g), "split": int(s)} for name, g, s in zip(feature_names(schema), gain, split)
    ]
    rows.sort(key=lambda r: (-r["gain"], -r["split"], r["feature"]))
    write_json(run.path / "importance.json", rows)
    top = rows[:TOP][::-1]
    fig, axes = figure(1, 2, size=(5.0, max(3.0, 0.25 * len(top) + 1)))
    for ax, key in zip(axes[0], ("gain", "split")):
        ax.barh([r["feature"] for r in top], [r[key] for r in top], color="tab:blue")
        ax.set_title(f"importance ({key})")
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    save_figure(fig, run.plots / "importance.png")
    return rows
