"""Gradient boosting on tables with LightGBM: classification, regression, ranking.

Python API (the CLI is a thin layer over it; pandas and LightGBM are imported on first use, so
``mltk --help`` stays fast)::

    from mltoolkit import boost
    result = boost.train(boost.Config(data="train.csv", target="y"))   # writes runs/boost/train/
    model = boost.load(result.run_dir)
    model.predict([{"x1": 0.3, "color": "red"}], proba=True)           # [{"prediction": ..., "proba_...": ...}]
    boost.evaluate(result.run_dir, "test.csv")                         # metrics, also in the run's eval.json
"""

from __future__ import annotations

from typing import Any

_API = {
    "Config": ("mltoolkit.boost.params", "BoostConfig"),
    "train": ("mltoolkit.boost.training", "train"),
    "load": ("mltoolkit.boost.score", "load"),
    "evaluate": ("mltoolkit.boost.score", "evaluate"),
}
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'mltoolkit.boost' has no attribute {name!r}")
    import importlib

    module, attribute = _API[name]
    return getattr(importlib.import_module(module), attribute)
