"""Pretrained weights for torchvision models: the weights API (downloads), or a local file.

``--weights`` takes ``DEFAULT``, a torchvision enum name (``IMAGENET1K_V1`` or
``ResNet18_Weights.IMAGENET1K_V1``), ``none``, or a path to a state dict. Builders are always
called with ``weights=None`` and the state dict is loaded afterwards, so that no builder downloads
behind our back (torchvision's segmentation builders default ``weights_backbone`` to ImageNet) and
so a failed download becomes a clear exit-4 message that says how to pass a local file instead.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from mltoolkit.core.console import info
from mltoolkit.core.errors import DataError, ResourceError

if TYPE_CHECKING:
    import torch
    from torchvision.models import WeightsEnum

WeightsSource = Union["WeightsEnum", Path, None]
_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


def weights_enum(model_name: str) -> type[WeightsEnum] | None:
    """The torchvision weights enum of a model, or ``None`` when it has no pretrained weights."""
    from torchvision.models import get_model_weights

    try:
        return get_model_weights(model_name)
    except (ValueError, KeyError):
        return None


def parse_weights(model_name: str, spec: str | None, option: str = "--weights") -> WeightsSource:
    """Resolve a ``--weights`` value for ``model_name`` to an enum member, a file path or ``None``."""
    if spec is None or spec.lower() == "none":
        return None
    path = Path(spec).expanduser()
    if path.exists() or path.suffix.lower() in _FILE_SUFFIXES or "/" in spec:
        if not path.is_file():
            raise DataError(f"{option} {spec}: file not found")
        return path
    enum = weights_enum(model_name)
    if enum is None:
        raise DataError(f"{option} {spec}: torchvision has no pretrained weights for {model_name}; use none or a file")
    member = spec.split(".")[-1]
    if "." in spec and spec.split(".")[0] != enum.__name__:
        raise DataError(f"{option} {spec}: weights of another model; {model_name} takes {enum.__name__}.*")
    try:
        return enum[member]
    except KeyError:
        names = ", ".join(enum.__members__)
        raise DataError(f"{option} {spec}: unknown weights for {model_name}; expected one of {names}") from None


def reference_weights(model_name: str, source: WeightsSource) -> WeightsEnum | None:
    """The enum member whose transforms and metadata apply: the chosen one, else the model's default.

    A local file or ``none`` still preprocesses like the default pretrained weights (ImageNet mean/std,
    the model's resize and crop), which costs nothing to know: only ``get_state_dict`` downloads.
    """
    if source is not None and not isinstance(source, Path):
        return source
    enum = weights_enum(model_name)
    return enum.DEFAULT if enum is not None else None  # type: ignore[attr-defined]


def load_state_dict(source: WeightsEnum | Path, option: str = "--weights") -> dict[str, torch.Tensor]:
    """Download (torchvision's cache) or read a state dict; failures are exit 3 or 4, not tracebacks.

    stdout carries only results, so torch.hub's download notice is sent to stderr.
    """
    import torch

    if isinstance(source, Path):
        try:
            state = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(f"{source}: not a readable state dict ({type(exc).__name__}: {exc})") from None
        return _unwrap(state, source)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torch.hub prints 'Downloading: ...' to stdout
            return source.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, HTTPError, OSError, hash mismatch: all mean "not available here"
        raise ResourceError(
            f"could not download {source} from {source.url} ({type(exc).__name__}); on a machine with internet "
            f"download that file and pass it with {option} PATH.pth"
        ) from None


def _unwrap(state: Any, source: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state dict, ``{"state_dict": ...}``, ``{"model": ...}``, and DDP ``module.`` prefixes."""
    import torch

    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{source}: holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_pretrained(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load every tensor of ``state`` that fits ``model`` by name and shape; report what did not.

    Tensors that do not fit are usually the old classification head, which is replaced anyway; a
    file with nothing that fits is the wrong model and an error.
    """
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise DataError(f"{source}: none of its tensors fit {type(model).__name__} (wrong model?)")
    model.load_state_dict(fitting, strict=False)
    skipped = sorted(set(state) - set(fitting))
    missing = sorted(set(own) - set(fitting))
    if skipped or missing:
        info(
            f"pretrained weights from {source}: {len(fitting)} tensors loaded, {len(skipped)} skipped, "
            f"{len(missing)} left at initialisation" + (f" (e.g. {missing[0]})" if missing else "")
        )
