"""The optional ``mltk[export]`` extra: a missing package is exit 4 with the line that installs it."""

from __future__ import annotations

from importlib.util import find_spec

from mltoolkit.core.errors import ResourceError

INSTALL = "pip install 'mltk[export]'"

# What writing and checking each format imports, beyond mltk's own dependencies.
NEEDS = {
    "onnx": ("onnx", "onnxruntime"),
    "onnx-torch": ("onnx", "onnxruntime", "onnxscript"),  # torch.onnx's dynamo exporter builds with onnxscript
    "onnx-lightgbm": ("onnx", "onnxruntime", "onnxmltools"),
}


def require(kind: str) -> None:
    """Refuse before any work when a package of ``kind`` (a key of ``NEEDS``) is not installed."""
    missing = [name for name in NEEDS.get(kind, ()) if find_spec(name) is None]
    if missing:
        raise ResourceError(f"{', '.join(missing)} not installed (needed for {kind.split('-')[0]}); {INSTALL}")
