"""Collaborative filtering on user,item,rating data with implicit.

Python API (imported lazily, so ``import mltoolkit.recommend`` stays light)::

    from mltoolkit.recommend import RecommendConfig, train, evaluate
    summary = train("ratings.csv", RecommendConfig(model="als"))
    evaluate(Path(summary["run_dir"]))
"""

from __future__ import annotations

from typing import Any

_API = {
    "train": "mltoolkit.recommend.training",
    "evaluate": "mltoolkit.recommend.evaluation",
    "RecommendConfig": "mltoolkit.recommend.config",
    "recommend_users": "mltoolkit.recommend.prediction",
    "recommend_histories": "mltoolkit.recommend.prediction",
    "similar_items": "mltoolkit.recommend.prediction",
    "load_served": "mltoolkit.recommend.serving",
}
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'mltoolkit.recommend' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_API[name]), name)
