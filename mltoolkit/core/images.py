"""Image records of the image techniques' ``predict``: one decoder for transfer and segment (and the server).

A record may be a file path, encoded bytes (PNG, JPEG...), an HxWx3 uint8 array or a PIL image; each
becomes an RGB PIL image, or a one-line ``DataError`` that names the record and what was expected.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.console import warn
from mltoolkit.core.errors import DataError
from mltoolkit.core.io import chunks, iter_lines

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


def rgb_images(batch: Any, map_: Any = map) -> list[Image.Image]:
    """A Predictor's batch, a list of records, decoded by ``to_rgb`` (through ``map_``: a thread pool's map decodes
    in parallel); a batch that is not a list is a ``DataError`` saying what came instead."""
    if isinstance(batch, (str, bytes, Path)) or not isinstance(batch, Sequence):
        raise DataError(f"expected a list of images ({EXPECTED}), got {type(batch).__name__}")
    return list(map_(lambda item: to_rgb(*item), enumerate(batch)))


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


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file's header, no pixels decoded; a file that is not an image is a ``DataError``."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for damaged files
        raise DataError(f"{path}: not a readable image ({exc})") from None


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


def decoded_batches(inputs: list[str], batch_size: int, strict: bool) -> Iterator[tuple[list[str], list[Image.Image]]]:
    """``predict``'s inputs (``iter_image_paths``) as (paths, RGB images) batches of up to ``batch_size``.

    A thread pool decodes one batch at a time (Pillow releases the GIL), so a pipe of paths on stdin streams.
    A file that cannot be read is exit 3 with ``strict``, else a warning and a skip, given once some image was
    decoded: when none is (text that is not paths, say), that is one error (exit 3), not a warning per line.
    """
    from concurrent.futures import ThreadPoolExecutor

    from mltoolkit.core.device import available_cores

    seen, decoded = 0, False
    unread: list[tuple[str, str]] = []  # skipped, not reported yet
    with ThreadPoolExecutor(available_cores(), thread_name_prefix="mltk-decode") as pool:
        for paths in chunks(iter_image_paths(inputs), batch_size):
            seen += len(paths)
            good: list[tuple[str, Image.Image]] = []
            for path, image in zip(paths, pool.map(_decode, paths)):
                if isinstance(image, str):
                    if strict:
                        report_bad_image(path, image, strict)
                    unread.append((path, image))
                else:
                    good.append((path, image))
            if good:
                decoded = True
                _report_skipped(unread)
                yield [path for path, _ in good], [image for _, image in good]
    if not decoded:
        raise DataError(_nothing_decoded(inputs, seen, unread))
    _report_skipped(unread)


def _decode(path: str) -> Image.Image | str:
    """The decoded image, or what is wrong with the file."""
    try:
        return load_rgb(path)
    except FileNotFoundError:
        return "file not found"
    except Exception:  # a folder, a name the OS refuses, a damaged file: all "not a readable image"
        return image_problem(path) or "cannot be decoded"


def _report_skipped(unread: list[tuple[str, str]]) -> None:
    for path, problem in unread:
        report_bad_image(path, problem, strict=False)
    unread.clear()


def _nothing_decoded(inputs: list[str], seen: int, unread: list[tuple[str, str]]) -> str:
    if not seen:
        return f"no images in {', '.join(inputs)}"
    first = "{}: {}".format(*unread[0])
    shown = first if len(first) <= 160 else first[:157] + "..."  # garbage on stdin makes long, odd "paths"
    shown = shown.encode("utf-8", "backslashreplace").decode()  # undecodable bytes shown as escapes
    return f"none of the {seen} inputs is a readable image (the first: {shown})"
