"""Run directories: where every ``train`` writes what it did, and what ``evaluate``/``predict`` read.

Layout (docs/run-directory.md)::

    runs/<technique>/<name>[-N]/
        config.json  env.json  metrics.jsonl  summary.json  checkpoints/  plots/

A run is never overwritten: a taken name gets ``-2``, ``-3``... A RUN argument may be a run
directory, a file inside one (a checkpoint), ``<technique>/<name>`` or ``<name>`` under the runs
directory, or ``latest``.
"""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mltoolkit import __version__
from mltoolkit.core.errors import DataError
from mltoolkit.core.io import atomic_write, read_json, write_json

DEFAULT_RUNS_DIR = Path("runs")
_VERSIONED = ("torch", "torchvision", "gymnasium", "lightgbm", "implicit", "numpy", "pandas")


@dataclass(frozen=True)
class Run:
    """A run directory and the files in it."""

    path: Path

    @property
    def technique(self) -> str:
        return self.path.parent.name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.path / "config.json", config)

    def read_config(self) -> dict[str, Any]:
        return read_json(self.path / "config.json")

    def write_env(self, *, device: str, seed: int | None, **extra: Any) -> None:
        """Record what is needed to reproduce the run: versions, device, seed, command line."""
        write_json(
            self.path / "env.json",
            {
                "mltk": __version__,
                "python": platform.python_version(),
                "platform": platform.platform(),
                "versions": package_versions(),
                "device": device,
                "seed": seed,
                "argv": sys.argv,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **extra,
            },
        )

    def log(self, record: dict[str, Any]) -> None:
        """Append one line to metrics.jsonl (a single write, flushed, so a crash loses no line)."""
        from mltoolkit.core.console import to_jsonable

        line = json.dumps(to_jsonable(record)) + "\n"
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl atomically (on resume: drop lines logged after the last checkpoint)."""
        from mltoolkit.core.console import to_jsonable

        with atomic_write(self.path / "metrics.jsonl") as handle:
            for record in records:
                handle.write(json.dumps(to_jsonable(record)) + "\n")

    def write_summary(self, summary: dict[str, Any]) -> None:
        """summary.json: ``headline`` ({metric, value}) is what ``mltk runs list`` shows."""
        write_json(self.path / "summary.json", {"technique": self.technique, **summary})

    def read_summary(self) -> dict[str, Any]:
        path = self.path / "summary.json"
        return read_json(path) if path.exists() else {}


def package_versions() -> dict[str, str | None]:
    """Installed versions without importing the packages (importing torch takes seconds)."""
    versions: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def create_run(technique: str, name: str, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Run:
    """Make a new, empty run directory; a taken name gets the next free ``-N`` suffix."""
    if not _NAME.match(name):
        raise DataError(f"run name {name!r} may hold only letters, digits, '.', '_' and '-'")
    parent = Path(runs_dir) / technique
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{parent}: cannot create the runs directory ({exc.strerror})") from None
    candidate, number = parent / name, 1
    while True:
        try:
            candidate.mkdir()  # atomic: two runs started at once never share a directory
            break
        except FileExistsError:
            number += 1
            candidate = parent / f"{name}-{number}"
    run = Run(candidate)
    run.checkpoints.mkdir()
    run.plots.mkdir()
    return run


def start_run(
    technique: str,
    config: dict[str, Any],
    *,
    name: str,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
    resume: str | None = None,
    device: str,
    seed: int | None,
) -> tuple[Run, bool]:
    """Create a run (or reopen one with ``resume``) and write its config and env files.

    Returns ``(run, resumed)``. A resumed run keeps its directory and metrics; its config.json is
    rewritten with ``config`` so that overrides given on resume (more epochs, say) are recorded.
    """
    if resume is not None:
        run = Run(resolve_run_dir(resume, runs_dir, technique))
        resumed = True
    else:
        run = create_run(technique, name, runs_dir)
        resumed = False
    run.write_config(config)
    run.write_env(device=device, seed=seed, resumed=resumed)
    return run, resumed


def resolve_run(ref: str | Path, runs_dir: str | Path = DEFAULT_RUNS_DIR, technique: str | None = None) -> Path:
    """Resolve a RUN argument to an existing run directory or file (a checkpoint)."""
    text = str(ref)
    runs_dir = Path(runs_dir)
    if text == "latest":
        runs = list(iter_runs(runs_dir, technique))
        if not runs:
            where = runs_dir / technique if technique else runs_dir
            raise DataError(f"no runs under {where}; train one first")
        return max(runs, key=_created).path
    candidates = [Path(text), runs_dir / text]
    if technique:
        candidates.append(runs_dir / technique / text)
    other_folders = []  # existing folders that are not runs (runs/rl itself, for a run named "rl")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            if not _looks_like_run(candidate):
                other_folders.append(candidate)
                continue
            if technique and candidate.parent.name != technique:
                raise DataError(f"{candidate}: is a {candidate.parent.name!r} run, not {technique!r}")
            return candidate
    if other_folders:
        raise DataError(f"{other_folders[0]}: not a run directory (no config.json)")
    raise DataError(
        f"{text}: no such run or checkpoint (looked in ., {runs_dir}{'/' + technique if technique else ''})"
    )


def resolve_run_dir(ref: str | Path, runs_dir: str | Path = DEFAULT_RUNS_DIR, technique: str | None = None) -> Path:
    """Like ``resolve_run``, but a file inside a run resolves to the run directory itself."""
    path = resolve_run(ref, runs_dir, technique)
    if path.is_file():
        path = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not (path / "config.json").exists():
        raise DataError(f"{path}: not a run directory (no config.json)")
    return path


def _looks_like_run(path: Path) -> bool:
    return (path / "config.json").exists()


def _created(run: Run) -> float:
    return (run.path / "config.json").stat().st_mtime


def iter_runs(runs_dir: str | Path = DEFAULT_RUNS_DIR, technique: str | None = None) -> Iterator[Run]:
    """Every run directory under ``runs_dir`` (optionally of one technique), in name order."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return
    techniques = [technique] if technique else sorted(p.name for p in runs_dir.iterdir() if p.is_dir())
    for tech in techniques:
        folder = runs_dir / tech
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_dir() and _looks_like_run(path):
                    yield Run(path)


def describe(run: Run) -> dict[str, Any]:
    """One row of ``mltk runs list``: technique, name, created, status, headline metric."""
    summary = run.read_summary()
    try:
        created = read_json(run.path / "env.json").get("created", "")
    except DataError:
        created = ""
    headline = summary.get("headline") or {}
    return {
        "technique": run.technique,
        "name": run.name,
        "created": created,
        "status": summary.get("status", "running"),
        "metric": headline.get("metric", ""),
        "value": headline.get("value"),
        "path": str(run.path),
    }
