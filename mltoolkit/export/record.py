"""``export.json`` in the run: one entry per export (format, file, options, parity figures, ok)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mltoolkit.core.errors import DataError
from mltoolkit.core.io import write_json

EXPORT_FILE = "export.json"


def read_exports(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / EXPORT_FILE
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text(encoding="utf-8"))["exports"])
    except (ValueError, KeyError, TypeError):
        raise DataError(f'{path}: corrupt (expected {{"exports": [...]}}); delete it and export again') from None


def add_export(run_dir: Path, entry: dict[str, Any]) -> None:
    """Append ``entry``, replacing an older entry for the same file."""
    kept = [e for e in read_exports(run_dir) if e.get("path") != entry["path"]]
    write_json(run_dir / EXPORT_FILE, {"exports": [*kept, entry]})


def stored_path(run_dir: Path, output: Path) -> str:
    """The file relative to the run when it lies inside it (a copied run keeps working), else absolute."""
    output = output.resolve()
    try:
        return str(output.relative_to(run_dir.resolve()))
    except ValueError:
        return str(output)
