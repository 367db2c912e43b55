"""``predict()``: stream one record per image (CSV ``path,label,probability`` or JSON lines with top-k)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

from mltoolkit.core.errors import DataError


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def predict(
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
) -> int:
    """Classify image files, folders or paths read from stdin (``-``), in batches; return the count.

    Images are decoded by a small thread pool (Pillow releases the GIL while decoding) one batch at
    a time, so a pipe of paths on stdin streams: each batch's records are written when it is scored.
    Unreadable inputs are warned about and skipped, but only once some image was classified: when
    none is (text that is not paths, say), that is one error (exit 3), not a warning per line.
    """
    import torch

    from mltoolkit.core.device import available_cores, set_threads
    from mltoolkit.core.io import RecordWriter
    from mltoolkit.core.training import autocast
    from mltoolkit.transfer.classifier import check_counts, load_classifier
    from mltoolkit.transfer.data import eval_transform, image_problem, iter_input_paths, load_rgb, report_bad_image

    check_counts(top_k=top_k, batch_size=batch_size)
    if output is not None and Path(output).is_dir():
        raise DataError(f"{output}: is a directory; --output takes a file name")
    fmt = fmt or ("jsonl" if top_k else "csv")
    set_threads(threads)
    clf = load_classifier(run, runs_dir, device)
    transform = eval_transform(clf.pre)
    k = min(top_k or 1, len(clf.classes))

    def prepare(path: str) -> Any:
        try:
            return transform(load_rgb(path))
        except FileNotFoundError:
            return "file not found"
        except Exception:  # a folder, a name the OS refuses, a damaged file: all "not a readable image"
            return image_problem(path) or "cannot be decoded"

    count, seen = 0, 0
    unread: list[tuple[str, str]] = []  # skipped before the first classified image
    with RecordWriter(output, fmt) as writer, ThreadPoolExecutor(max(1, available_cores())) as pool:
        for paths in _chunks(iter_input_paths(inputs), batch_size):
            seen += len(paths)
            prepared = list(pool.map(prepare, paths))
            good = [(p, x) for p, x in zip(paths, prepared) if not isinstance(x, str)]
            for path, problem in zip(paths, prepared):
                if isinstance(problem, str):
                    if strict:
                        report_bad_image(path, problem, strict)
                    unread.append((path, problem))
            if not good:
                continue
            for path, problem in unread:
                report_bad_image(path, problem, strict)
            unread.clear()
            images = torch.stack([x for _, x in good]).to(clf.device, non_blocking=True)
            with torch.inference_mode(), autocast(clf.device, clf.amp):
                probabilities = clf.model(images).float().softmax(1).cpu()
            top_p, top_i = probabilities.topk(k, dim=1)
            for row, (path, _) in enumerate(good):
                record: dict[str, Any] = {
                    "path": path,
                    "label": clf.classes[int(top_i[row, 0])],
                    "probability": round(float(top_p[row, 0]), 6),
                }
                if top_k:
                    record["top_k"] = [
                        {"label": clf.classes[int(i)], "probability": round(float(p), 6)}
                        for p, i in zip(top_p[row], top_i[row])
                    ]
                writer.write(record)
                count += 1
        if not count:  # inside the writer: an --output file is not left behind empty
            raise DataError(_nothing_classified(inputs, seen, unread))
    for path, problem in unread:  # after the last classified image
        report_bad_image(path, problem, strict)
    return count


def _nothing_classified(inputs: list[str], seen: int, unread: list[tuple[str, str]]) -> str:
    if not seen:
        return f"no images to classify in {', '.join(inputs)}"
    first = "{}: {}".format(*unread[0])
    shown = first if len(first) <= 160 else first[:157] + "..."  # garbage on stdin makes long, odd "paths"
    shown = shown.encode("utf-8", "backslashreplace").decode()  # undecodable bytes shown as escapes
    return f"none of the {seen} inputs is a readable image (the first: {shown})"
