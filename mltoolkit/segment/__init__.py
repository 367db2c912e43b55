"""Semantic segmentation with fully convolutional networks (torchvision FCN, DeepLabV3, LRASPP).

Python API (the CLI is a thin layer over it; torch and torchvision are imported on first use, so
``mltk --help`` stays fast)::

    from mltoolkit import segment
    result = segment.train(segment.Config(data="shapes", size="64", epochs=3))   # runs/segment/...
    model = segment.load(result.run_dir)                                         # the best epoch's model
    model.predict(["a.png"])   # [{"image": "a.png", "width", "height", "fractions": {...}, "mask": uint8 HxW}]
    segment.evaluate(result.run_dir)            # metrics on the run's validation split, also in eval.json
"""

from __future__ import annotations

from mltoolkit.core.contract import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    Config="mltoolkit.segment.config:SegmentConfig",
    train="mltoolkit.segment.training:train",
    load="mltoolkit.segment.prediction:load",
    evaluate="mltoolkit.segment.evaluation:evaluate",
)
