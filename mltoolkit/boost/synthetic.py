"""A tiny boost run for tests and the docs: a binary table with a text column, trained for a few rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltoolkit.core.contract import Example

TINY_TRAIN = [
    "--target", "label", "--id", "id", "--num-rounds", "5", "--early-stopping", "0", "--no-refit",
    "--threads", "1", "--seed", "0",
]  # fmt: skip
COLORS = ("red", "green", "blue")


def tiny_example(folder: Path) -> Example:
    """train.csv / test.csv (200 / 50 labelled rows) and score.csv (4 rows) in ``folder``; 5 rounds, --resume to 6."""
    folder = Path(folder)
    _write(folder / "train.csv", _rows(200, seed=0))
    _write(folder / "test.csv", _rows(50, seed=1))
    score = [{k: v for k, v in row.items() if k != "label"} for row in _rows(4, seed=2)]
    _write(folder / "score.csv", score)
    return Example(
        train_args=[str(folder / "train.csv"), *TINY_TRAIN],
        predict_args=[str(folder / "score.csv"), "--proba"],
        records=score,
        more_args=["--num-rounds", "6"],
        evaluate_args=[str(folder / "test.csv")],
    )


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    """``label`` is yes when x1 + (color is red) > 0.5; x2 is noise. Three decimals: CSV reads them back exactly."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x1, x2, color = round(float(rng.normal()), 3), round(float(rng.normal()), 3), COLORS[i % 3]
        label = "yes" if x1 + (color == "red") > 0.5 else "no"
        rows.append({"id": seed * 1000 + i, "x1": x1, "x2": x2, "color": color, "label": label})
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
