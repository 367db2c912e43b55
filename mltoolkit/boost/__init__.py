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

from mltoolkit.core.contract import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    Config="mltoolkit.boost.params:BoostConfig",
    train="mltoolkit.boost.training:train",
    load="mltoolkit.boost.score:load",
    evaluate="mltoolkit.boost.score:evaluate",
)
