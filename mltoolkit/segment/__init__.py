"""Semantic segmentation with fully convolutional networks (torchvision FCN, DeepLabV3, LRASPP).

Python API, mirroring the CLI: ``train(SegmentConfig(data=...))``, ``evaluate(run, data)`` and
``predict(run, paths, output)``. Imports are lazy so ``mltk --help`` stays fast.
"""

from __future__ import annotations

from typing import Any


def train(config: Any, **kwargs: Any) -> dict[str, Any]:
    """Train and write a run directory (see ``mltoolkit.segment.training.train``)."""
    from mltoolkit.segment.training import train as _train

    return _train(config, **kwargs)


def evaluate(run: str, data: Any = None, **kwargs: Any) -> dict[str, Any]:
    """Metrics of a run's best checkpoint on a split (see ``mltoolkit.segment.evaluation.evaluate``)."""
    from mltoolkit.segment.evaluation import evaluate as _evaluate

    return _evaluate(run, data, **kwargs)


def predict(run: str, sources: Any, output: Any, **kwargs: Any) -> Any:
    """Write masks for images, yielding one record each (see ``mltoolkit.segment.prediction.predict``)."""
    from mltoolkit.segment.prediction import predict as _predict

    return _predict(run, sources, output, **kwargs)
