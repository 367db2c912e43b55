"""The technique contract: what every technique's Python API returns, and what the CLI, the HTTP server
and the exporter rely on (DESIGN.md, "The technique contract").

Each technique package offers, with the same shapes::

    Config                                         # the dataclass whose fields are the train options
    train(config, *, runs_dir, name, resume) -> TrainResult
    load(run, *, runs_dir, device) -> Predictor    # predict(batch) -> what `mltk <tech> predict` prints
    evaluate(run, data, ...) -> dict               # metrics, also written to the run's eval.json

and, for the tests and the docs, ``synthetic.tiny_example(folder) -> Example``: tiny valid data and the
arguments that train on it in seconds, so one contract test covers every technique in the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class TrainResult:
    """One typed result of ``train``, the same on every process of a torchrun job."""

    run_dir: Path
    status: str  # completed, solved, early_stopped, interrupted...
    headline: dict[str, Any]  # {"metric": name, "value": number}: what `mltk runs list` shows
    summary: dict[str, Any]  # the whole summary.json

    @classmethod
    def from_summary(cls, run_dir: str | Path, summary: dict[str, Any]) -> TrainResult:
        return cls(Path(run_dir), str(summary.get("status", "")), dict(summary.get("headline") or {}), summary)


@runtime_checkable
class Predictor(Protocol):
    """A trained model loaded from its run: the one thing ``predict``, ``mltk serve`` and ``mltk export`` use."""

    technique: str
    run_dir: Path | None

    def predict(self, batch: Sequence[Any], **options: Any) -> list[dict[str, Any]]:
        """One JSON-ready record per input, the fields ``mltk <tech> predict --format jsonl`` prints."""
        ...

    def metadata(self) -> dict[str, Any]:
        """What a client needs to call ``predict``: input schema, class names, action count, image size."""
        ...


def provenance(technique: str, run_dir: Path | None) -> dict[str, Any]:
    """Where a model comes from: the first keys of every Predictor's ``metadata`` and of every exported file's."""
    from mltoolkit import __version__

    return {"technique": technique, "run": run_dir.name if run_dir is not None else None, "mltk_version": __version__}


@dataclass(frozen=True)
class Example:
    """Tiny valid data for a technique and the CLI arguments that use it (tests, docs, demos)."""

    train_args: list[str]  # DATA and options that make `mltk <tech> train` valid and take seconds
    predict_args: list[str]  # INPUTS and options for `mltk <tech> predict RUN ...`
    records: list[Any]  # the same inputs as Python objects, for ``Predictor.predict``
    more_args: list[str]  # options that make `--resume` train one more epoch / round / step
    evaluate_args: list[str] = field(default_factory=list)  # DATA and options for `mltk <tech> evaluate RUN ...`


def lazy_api(package: str, **where: str) -> tuple[Callable[[str], Any], list[str]]:
    """A technique package's ``__getattr__`` and ``__all__``: each contract name (``Config="module:Class"``...)
    is imported on first use, so importing the package, as ``mltk --help`` does, loads no torch or lightgbm."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = where[name].partition(":")
        return getattr(import_module(module), attribute)

    return __getattr__, list(where)
