"""``load(run)``: a trained segmenter as the Predictor that ``mltk segment predict`` and ``mltk serve`` use.

``predict`` takes images (file paths, encoded bytes, HxWx3 uint8 arrays or PIL images) and returns, for
each, its ``width`` and ``height``, the fraction of its pixels per class (``fractions``) and the ``mask``:
an (H, W) uint8 array of class indices at the image's own size, with the input's ``image`` path first
when it was one; with ``overlay=True`` also the image with the class colours blended over it. ``mltk segment
predict`` prints the same records, with ``mask`` (and ``overlay``) the PNG files it wrote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.contract import provenance
from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.images import EXPECTED, decoded_batches, rgb_images
from mltoolkit.core.io import make_folder
from mltoolkit.core.params import check_counts
from mltoolkit.segment.config import parse_size
from mltoolkit.segment.inference import Trained, class_fractions, load_trained, predict_masks
from mltoolkit.segment.visual import overlay as blend
from mltoolkit.techniques import ONNXRUNTIME, SEGMENT

if TYPE_CHECKING:
    from mltoolkit.export.segment import OnnxSegmenter


def load(
    run: str | Path,
    *,
    runs_dir: str | Path = "runs",
    device: str = "auto",
    threads: int | None = None,
    batch_size: int | None = None,
    backend: str = SEGMENT.backends[0],
) -> Segmenter:
    """The best model of a run (a run directory, ``latest``, a name under ``runs_dir``, or a checkpoint alone).

    ``threads``: torch's CPU threads (None leaves them as they are); ``batch_size``: images per forward
    pass (None: the run's). ``backend``: ``torch`` (default), or ``onnxruntime`` to segment through the
    run's ONNX export on the CPU, so the same predict tests the file that ships (docs/export.md).
    """
    check_counts(batch_size=batch_size)
    if SEGMENT.check_backend(backend) == ONNXRUNTIME:
        from mltoolkit.export.segment import onnx_segmenter

        return Segmenter(onnx_segmenter(run, runs_dir, threads), batch_size)
    return Segmenter(load_trained(str(run), runs_dir, device, threads), batch_size)


class Segmenter:
    """A trained segmentation model (the contract's Predictor): one mask per image, at the image's size."""

    technique = SEGMENT.name

    def __init__(self, trained: Trained | OnnxSegmenter, batch_size: int | None = None) -> None:
        self.trained, self.run_dir = trained, trained.run_dir
        self.batch_size = batch_size or trained.config.batch_size

    def predict(self, batch: Sequence[Any], *, overlay: bool = False) -> list[dict[str, Any]]:
        """One record per image, in order; a record that is not an image is a ``DataError`` naming it. ``overlay``
        adds the image with the class colours blended over it, (H, W, 3) uint8."""
        images = rgb_images(batch)
        classes = self.trained.classes
        records = []
        for record, image, mask in zip(batch, images, predict_masks(self.trained, images, self.batch_size)):
            named = {"image": str(record)} if isinstance(record, (str, Path)) else {}
            fractions = class_fractions(mask, classes.names)
            painted = {"overlay": blend(image, mask, classes.colors)} if overlay else {}
            records.append(
                {**named, "width": image.width, "height": image.height, "fractions": fractions, "mask": mask, **painted}
            )
        return records

    def metadata(self) -> dict[str, Any]:
        trained = self.trained
        return {
            **provenance(self.technique, self.run_dir),
            "model": trained.config.model,
            "classes": trained.classes.names,
            "colors": [list(c) for c in trained.classes.colors],
            "image_size": list(parse_size(trained.config.size)),  # [height, width] the model sees; masks come
            "input": EXPECTED,  # back at each image's own size
            "output": ["width", "height", "fractions", "mask", "overlay"],
            "options": {"overlay": False},
        }


def predict_files(
    run: str,
    sources: Sequence[str],
    output: str | Path,
    *,
    overlay: bool = False,
    fmt: str = "jsonl",
    runs_dir: str | Path = "runs",
    device: str = "auto",
    threads: int | None = None,
    batch_size: int | None = None,
    strict: bool = False,
    backend: str = SEGMENT.backends[0],
) -> Iterator[dict[str, Any]]:
    """``mltk segment predict``: masks through ``Segmenter.predict``, one batch at a time (``core.images.
    decoded_batches``: unreadable files are skipped with a warning, or exit 3 with ``strict``); yields each image's
    record (its ``mask`` and ``overlay`` the PNG files written) as soon as its batch is done."""
    from PIL import Image

    from mltoolkit.segment.visual import palette_image, save_png

    if fmt != "jsonl":
        raise UsageError(f"--format {fmt!r}: segment predict prints jsonl (the masks are PNG files)")
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise DataError(f"--output {output}: a file; predict writes one mask per image into a folder")
    segmenter = load(run, runs_dir=runs_dir, device=device, threads=threads, batch_size=batch_size, backend=backend)
    make_folder(output, "the --output folder")
    colors, seen = segmenter.trained.classes.colors, Counter[str]()
    for paths, images in decoded_batches(list(sources), segmenter.batch_size, strict):
        for path, record in zip(paths, segmenter.predict(images, overlay=overlay)):
            stem = Path(path).stem
            seen[stem] += 1
            stem = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"  # two inputs of one name: name, name-2...
            mask = record.pop("mask")
            shown = {"image": path, "mask": str(save_png(palette_image(mask, colors), output / f"{stem}.png"))}
            if overlay:
                painted = Image.fromarray(record.pop("overlay"))
                shown["overlay"] = str(save_png(painted, output / f"{stem}_overlay.png"))
            yield {**shown, **record}
