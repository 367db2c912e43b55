"""The edge of the LightGBM library: its log sent to stderr, model files checked before it reads them, the CPU.

LightGBM prints its log (warnings included) with ``print``, on stdout, where ``predict`` writes its
records and ``train`` its JSON. And it parses a model file's trees in parallel at the offsets its
``tree_sizes`` header lists: a file cut short or edited makes it log dozens of ``[Fatal]`` lines
and abort the process (SIGABRT), or read past the text (segfault), instead of raising.

A model file (``Booster.save_model``) is a header (``tree``, then ``key=value`` lines ending with
``tree_sizes=``), a blank line, one ``Tree=i`` block per tree of exactly the listed size,
``end of trees``, then feature importances and ``parameters:`` up to ``end of parameters``.
LightGBM reads nothing after that but its Python package's last line (``pandas_categorical:``), so
mltk keeps the schema there too, one ``mltk_schema:`` line before it: model.txt loads on its own.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from mltoolkit.core.console import info, warn
from mltoolkit.core.errors import DataError, ResourceError
from mltoolkit.core.io import atomic_write

MODEL_FILE = "model.txt"  # in a run directory: the model and the schema that encodes its inputs
SCHEMA_FILE = "schema.json"
_SCHEMA_KEY = "mltk_schema:"
_HEADER_KEYS = (b"version", b"num_class", b"num_tree_per_iteration", b"max_feature_idx", b"tree_sizes")


@cache
def lightgbm() -> ModuleType:
    """``import lightgbm``, its log going to stderr (status lines, hidden by --quiet; warnings)."""
    import lightgbm

    lightgbm.register_logger(_Log())
    return lightgbm


class _Log:
    def info(self, message: str) -> None:
        info(message)

    def warning(self, message: str) -> None:
        warn(message)


def save_model(booster: Any, path: Path, num_iteration: int, schema: dict[str, Any]) -> None:
    """Write model.txt atomically: LightGBM's text, with the schema as one line before its last."""
    text = booster.model_to_string(num_iteration=num_iteration)
    head, key, last = text.rpartition("pandas_categorical:")
    line = _SCHEMA_KEY + json.dumps(schema) + "\n"
    with atomic_write(path) as handle:
        handle.write(head + line + key + last if key else text + line)


def embedded_schema(path: Path) -> dict[str, Any] | None:
    """The schema ``save_model`` put in a model file (None in one saved otherwise)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    start = text.rfind("\n" + _SCHEMA_KEY)
    if start < 0:
        return None
    line = text[start + 1 + len(_SCHEMA_KEY) : text.index("\n", start + 1)]
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        raise DataError(f"{path}: damaged {_SCHEMA_KEY} line; train again or load its run directory") from None


def check_device(device: str | None) -> None:
    """LightGBM here runs on the CPU: ``auto`` and ``cpu`` are accepted, an accelerator is exit 4."""
    spec = (device or "auto").lower()
    if spec.startswith("cuda") or spec == "mps":
        raise ResourceError(f"--device {spec}: this LightGBM build trains on the CPU only; use --device cpu or auto")
    if spec not in ("auto", "cpu"):
        raise DataError(f"unknown device {spec!r}; expected auto or cpu")


def load_booster(path: Path) -> Any:
    """``lightgbm.Booster`` from a model file, or a one-line ``DataError`` if the file is not a whole model."""
    check_model_file(path)
    lgb = lightgbm()
    try:
        return lgb.Booster(model_file=str(path))
    except (lgb.basic.LightGBMError, ValueError) as exc:  # ValueError: its last line (pandas_categorical) cut
        raise DataError(f"{path}: corrupt model file ({exc})") from None


def check_model_file(path: Path) -> None:
    """Refuse what LightGBM would crash on: a missing header key, trees not of the sizes the header lists,
    no ``end of trees``, parameters without their end."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the model file ({exc.strerror})") from None
    header, _, trees = text.partition(b"\n\n")
    lines = header.split(b"\n")
    fields = dict(line.split(b"=", 1) for line in lines[1:] if b"=" in line)
    missing = [key.decode() for key in _HEADER_KEYS if key not in fields]
    if lines[0] != b"tree":
        _corrupt(path, "no LightGBM header")
    if missing:
        _corrupt(path, f"the header lacks {', '.join(missing)}")
    try:
        sizes = [int(size) for size in fields[b"tree_sizes"].split()]
        per_round = int(fields[b"num_tree_per_iteration"])
    except ValueError:
        _corrupt(path, "unreadable tree_sizes or num_tree_per_iteration")
    offset = 0
    for number, size in enumerate(sizes):
        if not trees[offset : offset + size].startswith(b"Tree=%d\n" % number) or offset + size > len(trees):
            _corrupt(path, f"tree {number} of {len(sizes)} is cut short or damaged")
        offset += size
    if not trees[offset:].startswith(b"end of trees"):
        _corrupt(path, f"no 'end of trees' after the {len(sizes)} trees its header lists")
    _, parameters, rest = trees[offset:].partition(b"\nparameters:\n")
    if parameters and b"\nend of parameters\n" not in b"\n" + rest:
        _corrupt(path, "its parameters are cut short")
    if per_round < 1 or len(sizes) % per_round:
        _corrupt(path, f"{len(sizes)} trees is not a whole number of rounds of {per_round}")


def _corrupt(path: Path, why: str) -> NoReturn:
    raise DataError(f"{path}: corrupt model file ({why}); train again or restore it from a copy")
