"""``load(run)``: a trained classifier as the Predictor that ``mltk transfer predict`` and ``mltk serve`` use.

``predict`` takes images (file paths, encoded bytes, HxWx3 uint8 arrays or PIL images) and returns
``{"label", "probability"}`` for each, the input's ``path`` first when it was one, and the ``top_k``
classes when asked: exactly the lines ``mltk transfer predict --format jsonl`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.contract import provenance
from mltoolkit.core.errors import DataError
from mltoolkit.core.images import EXPECTED, decoded_batches, rgb_images
from mltoolkit.core.params import check_counts
from mltoolkit.techniques import ONNXRUNTIME, TRANSFER
from mltoolkit.transfer.classifier import Classifier

if TYPE_CHECKING:
    from mltoolkit.export.transfer import OnnxClassifier


def load(
    run: str | Path,
    *,
    runs_dir: str | Path = "runs",
    device: str = "auto",
    threads: int | None = None,
    backend: str = TRANSFER.backends[0],
) -> ImageClassifier:
    """The best model of a run (a run directory, ``latest``, a name under ``runs_dir``, or a checkpoint alone).

    ``threads``: torch's CPU threads (None leaves them as they are). ``backend``: ``torch`` (default), or
    ``onnxruntime`` to classify through the run's ONNX export on the CPU, so the same predict tests the file
    that ships (docs/export.md).
    """
    from mltoolkit.core.device import set_threads
    from mltoolkit.transfer.classifier import load_classifier

    set_threads(threads)
    if TRANSFER.check_backend(backend) == ONNXRUNTIME:
        from mltoolkit.export.transfer import onnx_classifier

        return ImageClassifier(onnx_classifier(run, runs_dir, threads))
    return ImageClassifier(load_classifier(str(run), runs_dir, device))


class ImageClassifier:
    """A trained classifier (the contract's Predictor): the most likely class of each image, and the top k."""

    technique = TRANSFER.name

    def __init__(self, classifier: Classifier | OnnxClassifier) -> None:
        from mltoolkit.core.device import available_cores

        self.classifier, self.run_dir = classifier, classifier.run_dir
        self.transform = classifier.transform
        # resizing releases the GIL: a batch's images are prepared in parallel
        self.pool = ThreadPoolExecutor(max(1, available_cores()), thread_name_prefix="mltk-transfer")

    def predict(self, batch: Sequence[Any], *, top_k: int | None = None) -> list[dict[str, Any]]:
        """One record per image, in order; a record that is not an image is a ``DataError`` naming it."""
        import torch

        check_counts(top_k=top_k)
        images = rgb_images(batch, self.pool.map)
        if not images:
            return []
        clf = self.classifier
        tensors = list(self.pool.map(self.transform, images))
        probabilities = clf.logits(torch.stack(tensors)).softmax(1)
        top_p, top_i = probabilities.topk(min(top_k or 1, len(clf.classes)), dim=1)
        records = []
        for record, p, i in zip(batch, top_p.tolist(), top_i.tolist()):
            named = {"path": str(record)} if isinstance(record, (str, Path)) else {}
            result = {**named, "label": clf.classes[i[0]], "probability": round(p[0], 6)}
            if top_k:
                result["top_k"] = [{"label": clf.classes[c], "probability": round(q, 6)} for q, c in zip(p, i)]
            records.append(result)
        return records

    def metadata(self) -> dict[str, Any]:
        clf = self.classifier
        return {
            **provenance(self.technique, self.run_dir),
            "model": clf.config.get("model"),
            "classes": clf.classes,
            "image_size": clf.pre.crop_size,  # the centre crop the model sees
            "resize_size": clf.pre.resize_size,  # the shorter side is resized to this first
            "input": EXPECTED,
            "output": ["label", "probability", "top_k"],
            "options": {"top_k": None},
        }


def predict_files(
    run: str,
    inputs: list[str],
    *,
    runs_dir: str | Path = "runs",
    output: str | Path | None = None,
    fmt: str | None = None,
    top_k: int | None = None,
    batch_size: int = 32,
    device: str = "auto",
    threads: int | None = None,
    strict: bool = False,
    backend: str = TRANSFER.backends[0],
) -> int:
    """``mltk transfer predict``: classify image files, folders or paths read from stdin (``-``), in batches
    (``core.images.decoded_batches``: unreadable files are skipped with a warning, or exit 3 with ``strict``),
    through ``ImageClassifier.predict``; write one record per image as its batch is scored; return the count."""
    from mltoolkit.core.io import RecordWriter

    check_counts(top_k=top_k, batch_size=batch_size)
    if output is not None and Path(output).is_dir():
        raise DataError(f"{output}: is a directory; --output takes a file name")
    classifier = load(run, runs_dir=runs_dir, device=device, threads=threads, backend=backend)
    count = 0
    with RecordWriter(output, fmt or ("jsonl" if top_k else "csv")) as writer:  # nothing decoded: no file left
        for paths, images in decoded_batches(inputs, batch_size, strict):
            for path, record in zip(paths, classifier.predict(images, top_k=top_k)):
                writer.write({"path": path, **record})
            count += len(paths)
    return count
