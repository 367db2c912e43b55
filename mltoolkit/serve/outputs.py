"""Predict records into a JSON response body: what ``predict --format jsonl`` prints, made to travel over HTTP.

An image-shaped array in a record (segment's ``mask``, one class index per pixel, and its ``overlay``, the image
with the class colours painted over it) travels as a base64 PNG, which every browser and image library reads.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import orjson

from mltoolkit.core.console import to_jsonable


def response_body(records: list[dict[str, Any]]) -> bytes:
    """``{"predictions": [...]}``, each image-shaped array of a record as a base64 PNG."""
    return orjson.dumps({"predictions": [_record(record) for record in records]})


def _record(record: dict[str, Any]) -> dict[str, Any]:
    return {key: png_base64(value) if _is_picture(value) else to_jsonable(value) for key, value in record.items()}


def _is_picture(value: Any) -> bool:
    """An (H, W) mask or (H, W, 3) RGB image of 8-bit values (segment's ``mask`` and ``overlay``)."""
    return isinstance(value, np.ndarray) and (value.ndim == 2 or (value.ndim == 3 and value.shape[2] == 3))


def png_base64(array: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
