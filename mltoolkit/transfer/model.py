"""Torchvision classifiers with a new final layer for the data's classes.

Models are built with ``weights=None`` and ``num_classes`` set to the data's classes, so the final
layer is freshly initialised at the right size; the pretrained tensors are then loaded by name and
shape, the old 1000-class head left out (core.weights).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltoolkit.core.errors import DataError

if TYPE_CHECKING:
    import torch

# Builders whose auxiliary classifiers only matter for their original ImageNet recipe.
_NO_AUX = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


def classification_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def describe_models() -> list[dict[str, Any]]:
    """One row per classification model: its default weights, size and ImageNet accuracy (no download)."""
    from torchvision.models import get_model_weights

    rows = []
    for name in classification_models():
        enum = get_model_weights(name)
        default = enum.DEFAULT
        metrics = default.meta.get("_metrics", {}).get("ImageNet-1K", {})
        rows.append(
            {
                "model": name,
                "default_weights": f"{enum.__name__}.{default.name}",
                "weights": ", ".join(enum.__members__),
                "params_m": round(default.meta["num_params"] / 1e6, 1),
                "imagenet_acc1": metrics.get("acc@1"),
            }
        )
    return rows


def build_model(name: str, num_classes: int) -> torch.nn.Module:
    """A randomly initialised ``name`` with a ``num_classes``-way head; unknown names are exit 3."""
    import torchvision

    if name not in classification_models():
        raise DataError(f"unknown model {name!r}; `mltk transfer models` lists the classification models")
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **_NO_AUX.get(name, {}))


def find_head(model: torch.nn.Module, num_classes: int) -> tuple[str, torch.nn.Module]:
    """The final classification layer: the last Linear (or 1x1 Conv, SqueezeNet) with ``num_classes`` outputs."""
    import torch

    found = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module.out_features == num_classes:
            found = (name, module)
        elif isinstance(module, torch.nn.Conv2d) and module.out_channels == num_classes:
            found = (name, module)
    if found is None:
        raise DataError(f"cannot find the final layer of {type(model).__name__} (no layer with {num_classes} outputs)")
    return found


def load_weights(model: torch.nn.Module, source: Any, head_name: str) -> None:
    """Load pretrained tensors (from torchvision's download or a file), never the old head's."""
    from pathlib import Path

    from mltoolkit.core.weights import load_pretrained, load_state_dict

    if source is None:
        return
    state = load_state_dict(source)
    state = {k: v for k, v in state.items() if not k.startswith(head_name + ".")}
    load_pretrained(model, state, str(source) if isinstance(source, Path) else f"torchvision {source}")


def head_is_last(model: torch.nn.Module, head: torch.nn.Module, crop_size: int) -> bool:
    """True when the model's output is the head's output (everything but SqueezeNet), so features can be cached."""
    import torch

    seen: dict[str, torch.Tensor] = {}
    handle = head.register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
    try:
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, crop_size, crop_size))
    finally:
        handle.remove()
    return "out" in seen and seen["out"] is out


def freeze_backbone(model: torch.nn.Module, head: torch.nn.Module) -> None:
    """Feature extraction: every parameter but the head's stops taking gradients."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in head.parameters():
        parameter.requires_grad_(True)
