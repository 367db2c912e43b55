"""``predict``: one palette PNG mask per image (same size as the image), optionally an overlay too."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mltoolkit.core.errors import DataError
from mltoolkit.segment.data import list_images, open_image
from mltoolkit.segment.inference import check_batch_size, class_fractions, load_trained, predict_masks
from mltoolkit.segment.visual import overlay as blend
from mltoolkit.segment.visual import palette_image, save_png


def read_sources(sources: Sequence[str]) -> list[Path]:
    """Image files and folders; ``-`` reads one path per line from stdin."""
    paths: list[str] = []
    for source in sources:
        if source == "-":
            paths += [line.strip() for line in sys.stdin if line.strip()]
        else:
            paths.append(source)
    if not paths:
        raise DataError("no images given (pass files, folders, or - to read paths from stdin)")
    return list_images(paths)


def predict(
    run: str,
    sources: Sequence[str],
    output: str | Path,
    *,
    overlay: bool = False,
    runs_dir: str | Path = "runs",
    device: str = "auto",
    threads: int | None = None,
    batch_size: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one record per image (paths written, fraction of pixels per class) as masks are written."""
    check_batch_size(batch_size)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise DataError(f"--output {output}: a file; predict writes one mask per image into a folder")
    trained = load_trained(run, runs_dir, device, threads)
    images = read_sources(sources)
    make_folder(output)
    names = _output_names(images)
    loaded = (open_image(path).convert("RGB") for path in images)
    pictures: list[Any] = []

    def remember(stream):  # keep each image until its mask is back, for the overlay
        for picture in stream:
            pictures.append(picture)
            yield picture

    for path, stem, mask in zip(images, names, predict_masks(trained, remember(loaded), batch_size)):
        picture = pictures.pop(0)
        mask_path = save_png(palette_image(mask, trained.classes.colors), output / f"{stem}.png")
        record: dict[str, Any] = {"image": str(path), "mask": str(mask_path)}
        if overlay:
            record["overlay"] = str(
                save_png(blend(picture, mask, trained.classes.colors), output / f"{stem}_overlay.png")
            )
        record["width"], record["height"] = picture.width, picture.height
        record["fractions"] = class_fractions(mask, trained.classes.names)
        yield record


def make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file on the way (NotADirectoryError, FileExistsError), no permission...
        raise DataError(f"--output {path}: cannot create the folder ({exc.strerror})") from None


def _output_names(images: list[Path]) -> list[str]:
    """File stems, made unique (``name``, ``name-2``...) when two inputs share one."""
    seen: dict[str, int] = {}
    names = []
    for path in images:
        count = seen.get(path.stem, 0) + 1
        seen[path.stem] = count
        names.append(path.stem if count == 1 else f"{path.stem}-{count}")
    return names
