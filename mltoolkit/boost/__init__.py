"""Gradient boosting on tables with LightGBM: classification, regression, ranking.

The Python API behind ``mltk boost``: ``train(BoostConfig(...))``, ``evaluate(run, data)`` and
``predict(run, data)``. The heavy modules (pandas, LightGBM) load on first use, not on import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BoostConfig", "evaluate", "predict", "train"]


def __getattr__(name: str) -> Any:
    if name == "BoostConfig":
        from mltoolkit.boost.params import BoostConfig

        return BoostConfig
    if name == "train":
        from mltoolkit.boost.training import train

        return train
    if name in ("evaluate", "predict"):
        from mltoolkit.boost import score

        return getattr(score, name)
    raise AttributeError(name)
