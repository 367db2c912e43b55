"""Run directories: where every ``train`` writes what it did, and what ``evaluate``/``predict`` read.

Layout (docs/run-directory.md)::

    runs/<technique>/<name>[-N]/
        config.json  env.json  metrics.jsonl  summary.json  checkpoints/  plots/

A run is never overwritten: a taken name gets ``-2``, ``-3``... A RUN argument may be a run
directory, a file inside one (a checkpoint), ``<technique>/<name>`` or ``<name>`` under the runs
directory, or ``latest``: the latest *finished* run for evaluate/predict, the latest unfinished one
for ``--resume``.

The lifecycle: ``start_run`` takes the run's lock (one writer at a time), clears temporary files a
killed save left behind and marks the run ``running``; the technique writes the final summary. A
command that fails or is interrupted before that has its runs marked ``failed`` or ``interrupted`` by
the root CLI (``close_runs``); a ``running`` run whose lock is free lost its process (kill -9) and
reads as ``interrupted``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit import __version__
from mltoolkit.core.errors import DataError
from mltoolkit.core.io import atomic_write, make_folder, read_json, write_json

if TYPE_CHECKING:
    from mltoolkit.core.contract import TrainResult

DEFAULT_RUNS_DIR = Path("runs")
UNFINISHED = ("running", "refitting", "interrupted", "failed")  # statuses `latest` passes over for evaluate/predict
RESUMABLE = ("interrupted", "failed")
_LOCK_FILE = ".lock"
_OPENED: dict[Path, int] = {}  # runs this process writes: path -> file descriptor holding the lock
_SINKS: dict[Path, Any] = {}  # runs whose metrics rows also go to TensorBoard (--tensorboard)
_VERSIONED = ("torch", "torchvision", "gymnasium", "lightgbm", "implicit", "numpy", "pandas")


@dataclass(frozen=True)
class Run:
    """A run directory and the files in it."""

    path: Path

    @property
    def technique(self) -> str:
        """The technique the run's own files name (a copied run dir keeps it); its folder for old runs."""
        try:
            return self.read_summary().get("technique") or self.path.parent.name
        except DataError:
            return self.path.parent.name

    @property
    def status(self) -> str:
        """``running`` only while a process holds the run's lock: a killed process leaves ``interrupted``."""
        status = self.read_summary().get("status", "running")
        if status in ("running", "refitting") and not _is_locked(self.path):
            return "interrupted"
        return status

    def set_status(self, status: str) -> None:
        self.write_summary({**self.read_summary(), "status": status})

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
        config = read_json(self.path / "config.json")
        if not isinstance(config, dict):
            raise DataError(f"{self.path / 'config.json'}: not a run config (a JSON object was expected)")
        return config

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
        if self.path in _SINKS:
            _SINKS[self.path].write(record)

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

    def keep_metrics_until(self, key: str, last: float) -> None:
        """On resume: drop the rows logged after the checkpoint being resumed (``row[key] > last``), so the
        continued run logs them again exactly once."""
        self.rewrite_metrics([r for r in self.read_metrics() if r.get(key, 0) <= last])

    def finish(
        self,
        status: str,
        headline: dict[str, Any],
        *,
        best: dict[str, Any] | None = None,
        final: dict[str, Any] | None = None,
        wall_time_s: float | None = None,
        **extra: Any,
    ) -> TrainResult:
        """Write the final summary.json, the same shape for every technique, and return it as a TrainResult."""
        from mltoolkit.core.contract import TrainResult

        summary = {"status": status, "headline": headline, "best": best or {}, "final": final or {}}
        if wall_time_s is not None:
            summary["wall_time_s"] = round(wall_time_s, 3)
        self.write_summary({**summary, **extra})
        return TrainResult.from_summary(self.path, self.read_summary())

    def write_summary(self, summary: dict[str, Any]) -> None:
        """summary.json: ``headline`` ({metric, value}) is what ``mltk runs list`` shows."""
        write_json(self.path / "summary.json", {"technique": self.technique, **summary})

    def read_summary(self) -> dict[str, Any]:
        path = self.path / "summary.json"
        summary = read_json(path) if path.exists() else {}
        if not isinstance(summary, dict):
            raise DataError(f"{path}: not a run summary (a JSON object was expected)")
        return summary

    def resume_checkpoint(self) -> Path:
        """What ``--resume`` continues from: ``last.pt``, or ``best.pt`` when a kill hit the first save of last."""
        for name in ("last.pt", "best.pt"):
            if (self.checkpoints / name).is_file():
                return self.checkpoints / name
        raise DataError(f"{self.path}: nothing to resume (no checkpoints/last.pt or best.pt)")


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


def run_name(*parts: str) -> str:
    """A technique's default run name from ``parts`` (the model, the data's file or folder name...): what a run
    name cannot hold becomes '-', so that data in "my data/" trains without a --name."""
    cleaned = (re.sub(r"[^A-Za-z0-9._-]+", "-", part).strip("-._") for part in parts)
    return "-".join(part for part in cleaned if part) or "run"


def create_run(technique: str, name: str, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Run:
    """Make a new, empty run directory; a taken name gets the next free ``-N`` suffix."""
    if not _NAME.match(name):
        raise DataError(f"run name {name!r} may hold only letters, digits, '.', '_' and '-'")
    parent = make_folder(Path(runs_dir) / technique, "the runs directory")
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
    if config.get("tensorboard"):
        from mltoolkit.core.tracking import require_tensorboard

        require_tensorboard()
    if resume is not None:
        run = Run(resolve_resume(resume, runs_dir, technique))
        _lock(run.path)
        _remove_temporary_files(run.path)
        summary = run.read_summary()
    else:
        run = create_run(technique, name, runs_dir)
        _lock(run.path)
        summary = {}
    run.write_summary({**summary, "technique": technique, "status": "running"})
    run.write_config(config)
    run.write_env(device=device, seed=seed, resumed=resume is not None)
    if config.get("tensorboard"):
        from mltoolkit.core.tracking import TensorBoardSink

        _SINKS[run.path] = TensorBoardSink(run.path / "tb")
    return run, resume is not None


def close_runs(status: str | None = None) -> None:
    """Release the runs this process opened; with ``status`` (``failed``, ``interrupted``), first mark
    those still ``running`` with it. The root CLI calls this when a command ends, however it ends."""
    for path, fd in list(_OPENED.items()):
        try:
            run = Run(path)
            if status is not None and run.read_summary().get("status") in ("running", "refitting"):
                run.set_status(status)
        except (DataError, OSError):
            pass  # the run directory is gone or unreadable: nothing left to mark
        finally:
            os.close(fd)
            del _OPENED[path]
            if path in _SINKS:
                _SINKS.pop(path).close()


def _lock(path: Path) -> None:
    """Take the run's lock for this process, or refuse: two writers would interleave metrics and checkpoints."""
    if path in _OPENED:
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, one writer is the user's job
        return
    fd = os.open(path / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise DataError(
            f"{path}: in use by process {holder} (a train or --resume still running); wait or stop it"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _OPENED[path] = fd


def _is_locked(path: Path) -> bool:
    """Whether some process (this one included) holds the run's lock now."""
    if path.resolve() in {p.resolve() for p in _OPENED}:
        return True
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        return True
    try:
        fd = os.open(path / _LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _remove_temporary_files(path: Path) -> None:
    """Delete the hidden temporaries (``.last.x1y2.pt``) an atomic write leaves when its process is killed."""
    for folder in (path, path / "checkpoints", path / "plots"):
        for item in folder.glob(".*"):
            if item.is_file() and item.name != _LOCK_FILE:
                item.unlink(missing_ok=True)


def resolve_run(
    ref: str | Path,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
    technique: str | None = None,
    statuses: tuple[str, ...] | None = None,
) -> Path:
    """Resolve a RUN argument to an existing run directory or file (a checkpoint).

    ``latest`` is the most recently started run whose status is in ``statuses`` (default: any finished one).
    """
    text = str(ref)
    runs_dir = Path(runs_dir)
    if text == "latest":
        return _latest(runs_dir, technique, statuses).path
    candidates = [Path(text), runs_dir / text]
    if technique:
        candidates.append(runs_dir / technique / text)
    other_folders = []  # existing folders that are not runs (runs/rl itself, for a run named "rl")
    for candidate in candidates:
        if candidate.is_file():
            owner = candidate.parent.parent if candidate.parent.name == "checkpoints" else candidate.parent
            found = Run(owner).technique if technique and _looks_like_run(owner) else technique
            if found != technique:
                raise DataError(f"{candidate}: belongs to a {found!r} run, not {technique!r}")
            return candidate
        if candidate.is_dir():
            if not _looks_like_run(candidate):
                other_folders.append(candidate)
                continue
            found = Run(candidate).technique
            if technique and found != technique:
                raise DataError(f"{candidate}: is a {found!r} run, not {technique!r}")
            return candidate
    if other_folders:
        raise DataError(f"{other_folders[0]}: not a run directory (no config.json)")
    raise DataError(
        f"{text}: no such run or checkpoint (looked in ., {runs_dir}{'/' + technique if technique else ''})"
    )


def _latest(runs_dir: Path, technique: str | None, statuses: tuple[str, ...] | None) -> Run:
    runs = list(iter_runs(runs_dir, technique))
    where = runs_dir / technique if technique else runs_dir
    if not runs:
        raise DataError(f"no runs under {where}; train one first")
    wanted = (
        [r for r in runs if _readable_status(r) in statuses]
        if statuses
        else [r for r in runs if _readable_status(r) not in UNFINISHED + ("unreadable",)]
    )
    if not wanted:
        kind = "/".join(statuses) if statuses else "finished"
        raise DataError(f"no {kind} run under {where} (runs list shows the others)")
    return max(wanted, key=_created)


def _readable_status(run: Run) -> str:
    try:
        return run.status
    except DataError:
        return "unreadable"


def resolve_resume(ref: str | Path, runs_dir: str | Path = DEFAULT_RUNS_DIR, technique: str | None = None) -> Path:
    """The run directory ``--resume`` names; ``latest`` is the latest interrupted (or failed) run."""
    return resolve_run_dir(ref, runs_dir, technique, statuses=RESUMABLE)


def resumed_config(ref: str | None, runs_dir: str | Path, technique: str) -> dict[str, Any] | None:
    """The saved config.json of the run ``--resume`` names (None without ``--resume``): the layer a
    resumed run's new flags go over."""
    return None if ref is None else Run(resolve_resume(ref, runs_dir, technique)).read_config()


def resolve_run_dir(
    ref: str | Path,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
    technique: str | None = None,
    statuses: tuple[str, ...] | None = None,
) -> Path:
    """Like ``resolve_run``, but a file inside a run resolves to the run directory itself."""
    path = resolve_run(ref, runs_dir, technique, statuses)
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
    """One row of ``mltk runs list``: technique, name, created, status, headline metric.
    A run whose summary.json is damaged is listed as ``unreadable``, not dropped, and stops no other row."""
    try:
        summary, status = run.read_summary(), run.status
    except DataError:
        summary, status = {}, "unreadable"
    try:
        created = read_json(run.path / "env.json").get("created", "")
    except DataError:
        created = ""
    headline = summary.get("headline") or {}
    return {
        "technique": run.technique,
        "name": run.name,
        "created": created,
        "status": status,
        "metric": headline.get("metric", ""),
        "value": headline.get("value"),
        "path": str(run.path),
    }
