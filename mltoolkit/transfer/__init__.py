"""Transfer learning on an image folder: fine-tune or feature-extract a pretrained torchvision classifier.

Python API (the CLI is a thin layer over it; torch and torchvision are imported on first use, so
``mltk --help`` stays fast)::

    from mltoolkit import transfer
    result = transfer.train(transfer.Config(data="hymenoptera_data", epochs=3))   # runs/transfer/...
    model = transfer.load(result.run_dir)                                          # the best epoch's model
    model.predict(["ant.jpg"], top_k=2)          # [{"path": "ant.jpg", "label": "ants", "probability": ..., ...}]
    transfer.evaluate(result.run_dir)            # metrics on the run's validation split, also in eval.json
"""

from __future__ import annotations

from typing import Any

_API = {
    "Config": ("mltoolkit.transfer.config", "TransferConfig"),
    "train": ("mltoolkit.transfer.trainer", "train"),
    "load": ("mltoolkit.transfer.prediction", "load"),
    "evaluate": ("mltoolkit.transfer.evaluation", "evaluate"),
}
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'mltoolkit.transfer' has no attribute {name!r}")
    import importlib

    module, attribute = _API[name]
    return getattr(importlib.import_module(module), attribute)
