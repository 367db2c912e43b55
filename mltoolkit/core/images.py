"""Image records of the image techniques' ``predict``: one decoder for transfer and segment (and the server).

A record may be a file path, encoded bytes (PNG, JPEG...), an HxWx3 uint8 array or a PIL image; each
becomes an RGB PIL image, or a one-line ``DataError`` that names the record and what was expected.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.errors import DataError

if TYPE_CHECKING:
    from PIL import Image

EXPECTED = "an image file path, encoded image bytes (PNG, JPEG...), an HxWx3 uint8 array or a PIL image"


def to_rgb(index: int, record: Any) -> Image.Image:
    """Record ``index`` decoded to RGB (grayscale, palette, RGBA and CMYK files included)."""
    import numpy as np
    from PIL import Image

    if isinstance(record, Image.Image):
        return record.convert("RGB")
    if isinstance(record, np.ndarray) and record.dtype == np.uint8 and record.ndim == 3 and record.shape[2] == 3:
        return Image.fromarray(record)
    if isinstance(record, (str, Path, bytes, bytearray)):
        source = io.BytesIO(record) if isinstance(record, (bytes, bytearray)) else Path(record)
        shown = f"{record}: " if isinstance(record, (str, Path)) else ""
        if isinstance(source, Path) and not source.is_file():
            raise DataError(f"record {index}: {shown}file not found")
        try:
            with Image.open(source) as image:
                return image.convert("RGB")
        except Exception as exc:  # Pillow raises many types for bad bytes or files: each means "not an image"
            raise DataError(f"record {index}: {shown}not a readable image ({type(exc).__name__})") from None
    kind = f"array of {record.dtype} {record.shape}" if isinstance(record, np.ndarray) else type(record).__name__
    raise DataError(f"record {index}: expected {EXPECTED}; got {kind}")
