"""Transfer learning on an image folder: fine-tune or feature-extract a pretrained network.

The Python API mirrors the CLI::

    from mltoolkit.transfer import TransferConfig, train, evaluate, predict
    result = train(TransferConfig(data="hymenoptera_data", epochs=3))
    metrics = evaluate(result["run_dir"])

Heavy libraries (torch, torchvision) are imported when these functions run, not on import.
"""

from __future__ import annotations

from typing import Any

from mltoolkit.transfer.config import TransferConfig

__all__ = ["TransferConfig", "evaluate", "predict", "train"]


def train(cfg: TransferConfig, **kwargs: Any) -> dict[str, Any]:
    """Fine-tune or feature-extract as ``cfg`` says; see ``mltoolkit.transfer.trainer.train``."""
    from mltoolkit.transfer.trainer import train as _train

    return _train(cfg, **kwargs)


def evaluate(run: str, data: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Metrics of a run's best model; see ``mltoolkit.transfer.evaluation.evaluate``."""
    from mltoolkit.transfer.evaluation import evaluate as _evaluate

    return _evaluate(run, data, **kwargs)


def predict(run: str, inputs: list[str], **kwargs: Any) -> int:
    """Stream predictions for images; see ``mltoolkit.transfer.prediction.predict``."""
    from mltoolkit.transfer.prediction import predict as _predict

    return _predict(run, inputs, **kwargs)
