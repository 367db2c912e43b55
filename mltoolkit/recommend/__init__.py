"""Collaborative filtering on user,item,rating data with implicit.

Python API (imported lazily, so ``import mltoolkit.recommend`` stays light)::

    from mltoolkit import recommend
    result = recommend.train(recommend.Config(data="ratings.csv", model="als"))
    model = recommend.load(result.run_dir)
    model.predict(["u1", {"history": ["i3", "i7"]}], n=5)  # [{"user", "rank", "item", "score"}, ...]
    model.similar(["i3"], n=5)                             # [{"item", "rank", "similar", "score"}, ...]
    recommend.evaluate(result.run_dir)                     # metrics beside the popularity baseline
"""

from __future__ import annotations

from mltoolkit.core.contract import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    Config="mltoolkit.recommend.config:RecommendConfig",
    train="mltoolkit.recommend.training:train",
    load="mltoolkit.recommend.prediction:load",
    evaluate="mltoolkit.recommend.evaluation:evaluate",
)
