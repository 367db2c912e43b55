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

from mltoolkit.core.contract import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    Config="mltoolkit.transfer.config:TransferConfig",
    train="mltoolkit.transfer.trainer:train",
    load="mltoolkit.transfer.prediction:load",
    evaluate="mltoolkit.transfer.evaluation:evaluate",
)
