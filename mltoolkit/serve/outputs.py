"""Predict records into a JSON response body: what ``predict --format jsonl`` prints, made to travel over HTTP.

A two-dimensional array in a record (segment's ``mask``: one class index per pixel) travels as a base64 PNG,
which every browser and image library reads; with ``overlay`` the input image comes back too, the mask's
classes painted over it, for a person to look at.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import orjson

from mltoolkit.core.console import to_jsonable

OVERLAY_ALPHA = 0.5


def response_body(records: list[dict[str, Any]], images: list[Any] | None = None) -> bytes:
    """``{"predictions": [...]}``; ``images`` (the request's, with ``overlay``) adds an ``overlay`` per record."""
    if images is not None and len(images) != len(records):
        images = None
    shown = [_record(record, images[i] if images else None) for i, record in enumerate(records)]
    return orjson.dumps({"predictions": shown})


def _record(record: dict[str, Any], image: bytes | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, np.ndarray) and value.ndim == 2:
            out[key] = png_base64(value)
            if image is not None:
                out["overlay"] = png_base64(overlay(image, value))
        else:
            out[key] = to_jsonable(value)
    return out


def png_base64(array: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def overlay(image: bytes, mask: np.ndarray) -> np.ndarray:
    """The image (RGB) with each non-background class of ``mask`` blended in its own colour."""
    from PIL import Image

    with Image.open(io.BytesIO(image)) as opened:
        rgb = opened.convert("RGB")
    if mask.shape != (rgb.height, rgb.width):
        resized = Image.fromarray(mask.astype(np.uint8)).resize(rgb.size, Image.NEAREST)
        mask = np.asarray(resized)
    pixels = np.asarray(rgb, dtype=np.float32)
    colours = _palette(int(mask.max()) + 1)[mask]
    painted = mask > 0
    pixels[painted] = (1 - OVERLAY_ALPHA) * pixels[painted] + OVERLAY_ALPHA * colours[painted]
    return pixels.round().astype(np.uint8)


def _palette(count: int) -> np.ndarray:
    """Distinct colours for class indices (the PASCAL VOC bit-spreading scheme); class 0 black."""
    colours = np.zeros((count, 3), dtype=np.float32)
    for index in range(count):
        value, shift = index, 7
        while value:
            for channel in range(3):
                colours[index, channel] += ((value >> channel) & 1) << shift
            value, shift = value >> 3, shift - 1
    return colours
