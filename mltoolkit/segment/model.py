"""torchvision's segmentation models, built without downloads and with pretrained tensors loaded after.

torchvision's builders default ``weights_backbone`` to ImageNet and download it even with
``weights=None``; here every builder gets ``weights=None, weights_backbone=None`` and the chosen
state dicts (downloaded through core.weights, or read from a file) are loaded afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltoolkit.core.weights import load_pretrained, load_state_dict, parse_weights, reference_weights
from mltoolkit.segment.config import MODELS, SegmentConfig

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_model(config: SegmentConfig, num_classes: int, pretrained: bool = True) -> torch.nn.Module:
    """The model of ``config`` for ``num_classes``; with ``pretrained`` load ``--weights`` / ``--weights-backbone``."""
    import torch
    from torchvision.models import get_model

    kwargs = {"aux_loss": config.aux_loss} if not config.model.startswith("lraspp") else {}  # lraspp has none
    model = get_model(config.model, weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = config.bn_momentum
    if pretrained:
        load_weights(model, config)
    return model


def load_weights(model: torch.nn.Module, config: SegmentConfig) -> None:
    """Whole-model weights (their class head is skipped when the class count differs), else backbone weights."""
    source = parse_weights(config.model, config.weights, "--weights")
    if source is not None:
        load_pretrained(model, load_state_dict(source, "--weights"), str(source))
        return
    backbone = MODELS[config.model]
    source = parse_weights(backbone, config.weights_backbone, "--weights-backbone")
    if source is None:
        return
    state = load_state_dict(source, "--weights-backbone")
    if backbone.startswith("mobilenet"):  # IntermediateLayerGetter keeps `features`' children as 0, 1, ...
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    load_pretrained(model.backbone, state, str(source))


def normalization(config: SegmentConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std the chosen weights expect (ImageNet's for every torchvision segmentation model)."""
    reference = reference_weights(config.model, None)
    if reference is not None:
        transforms = reference.transforms()
        mean, std = getattr(transforms, "mean", None), getattr(transforms, "std", None)
        if mean is not None and std is not None:
            return tuple(mean), tuple(std)
    return IMAGENET_MEAN, IMAGENET_STD
