"""Image records of the image techniques' ``predict``: one decoder for transfer and segment (and the server).

A record may be a file path, encoded bytes (PNG, JPEG...), an HxWx3 uint8 array or a PIL image; each
becomes an RGB PIL image, or a one-line ``DataError`` that names the record and what was expected.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.console import warn
from mltoolkit.core.errors import DataError
from mltoolkit.core.io import iter_lines

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


# --- image files: what transfer and segment read from folders, arguments and stdin ----------------------


def image_extensions() -> set[str]:
    """Every file suffix Pillow can open (``.jpg``, ``.png``, ``.webp``, ``.tif``...)."""
    from PIL import Image

    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (and below, with ``recursive``), sorted, hidden files and folders left out."""
    extensions = image_extensions()
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in found
        if p.is_file() and p.suffix.lower() in extensions and not any(part.startswith(".") for part in p.parts[-2:])
    )


def iter_image_paths(inputs: Iterable[str]) -> Iterator[str]:
    """Expand predict's inputs lazily: files as given, folders to their images, ``-`` to the paths on stdin."""
    for item in inputs:
        if item == "-":
            yield from (line for _, line in iter_lines("-"))
        elif Path(item).is_dir():
            images = list_images(Path(item))
            if not images:
                warn(f"{item}: folder holds no images")
            yield from (str(p) for p in images)
        else:
            yield item


def open_image(path: str | Path) -> Image.Image:
    """The decoded image (its own mode: masks keep their indices), or a ``DataError`` naming the file."""
    from PIL import Image

    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for damaged files
        raise DataError(f"{path}: not a readable image ({exc})") from None
    return image


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image file to RGB (grayscale, palette, RGBA and CMYK files included)."""
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def image_problem(path: str) -> str | None:
    """What is wrong with a file, from its header and checksums (``verify`` decodes no pixels); None if nothing."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for damaged files
        return f"{type(exc).__name__}: {exc}"
    return None


def report_bad_image(path: str, problem: str, strict: bool) -> None:
    """An unreadable image: exit 3 with ``strict``, else a warning that it is skipped."""
    if strict:
        raise DataError(f"{path}: unreadable image ({problem})")
    warn(f"{path}: unreadable image, skipped ({problem})")
