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
from mltoolkit.core.images import EXPECTED, image_problem, iter_image_paths, load_rgb, report_bad_image, to_rgb
from mltoolkit.core.params import check_counts
from mltoolkit.techniques import ONNXRUNTIME, TRANSFER
from mltoolkit.transfer.classifier import Classifier

if TYPE_CHECKING:
    from PIL import Image

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
        if isinstance(batch, (str, bytes, Path)) or not isinstance(batch, Sequence):
            raise DataError(f"expected a list of images ({EXPECTED}), got {type(batch).__name__}")
        if not batch:
            return []
        clf = self.classifier
        tensors = list(self.pool.map(lambda item: self.transform(to_rgb(*item)), enumerate(batch)))
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
    """``mltk transfer predict``: classify image files, folders or paths read from stdin (``-``), in batches,
    through ``ImageClassifier.predict``; write one record per image; return the count.

    Images are decoded by a small thread pool (Pillow releases the GIL while decoding) one batch at
    a time, so a pipe of paths on stdin streams: each batch's records are written when it is scored.
    Unreadable inputs are warned about and skipped, but only once some image was classified: when
    none is (text that is not paths, say), that is one error (exit 3), not a warning per line.
    """
    from mltoolkit.core.io import RecordWriter, chunks

    check_counts(top_k=top_k, batch_size=batch_size)
    if output is not None and Path(output).is_dir():
        raise DataError(f"{output}: is a directory; --output takes a file name")
    classifier = load(run, runs_dir=runs_dir, device=device, threads=threads, backend=backend)
    count, seen = 0, 0
    unread: list[tuple[str, str]] = []  # skipped before the first classified image
    with RecordWriter(output, fmt or ("jsonl" if top_k else "csv")) as writer:
        for paths in chunks(iter_image_paths(inputs), batch_size):
            seen += len(paths)
            decoded = list(classifier.pool.map(_decode, paths))
            good = [(p, image) for p, image in zip(paths, decoded) if not isinstance(image, str)]
            for path, problem in zip(paths, decoded):
                if isinstance(problem, str):
                    if strict:
                        report_bad_image(path, problem, strict)
                    unread.append((path, problem))
            if not good:
                continue
            for path, problem in unread:
                report_bad_image(path, problem, strict)
            unread.clear()
            for (path, _), record in zip(good, classifier.predict([image for _, image in good], top_k=top_k)):
                writer.write({"path": path, **record})
            count += len(good)
        if not count:  # inside the writer: an --output file is not left behind empty
            raise DataError(_nothing_classified(inputs, seen, unread))
    for path, problem in unread:  # after the last classified image
        report_bad_image(path, problem, strict)
    return count


def _decode(path: str) -> Image.Image | str:
    """The decoded image, or what is wrong with the file (predict skips it with a warning)."""
    try:
        return load_rgb(path)
    except FileNotFoundError:
        return "file not found"
    except Exception:  # a folder, a name the OS refuses, a damaged file: all "not a readable image"
        return image_problem(path) or "cannot be decoded"


def _nothing_classified(inputs: list[str], seen: int, unread: list[tuple[str, str]]) -> str:
    if not seen:
        return f"no images to classify in {', '.join(inputs)}"
    first = "{}: {}".format(*unread[0])
    shown = first if len(first) <= 160 else first[:157] + "..."  # garbage on stdin makes long, odd "paths"
    shown = shown.encode("utf-8", "backslashreplace").decode()  # undecodable bytes shown as escapes
    return f"none of the {seen} inputs is a readable image (the first: {shown})"
