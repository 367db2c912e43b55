"""The registry: the one list of mltk's techniques, read by the root CLI, the run code and the tests.

Adding a technique means one entry here and one package ``mltoolkit/<name>/`` with a Typer ``app`` in
its ``cli.py`` and a config dataclass. Code inside a technique names itself through its entry
(``RL.name``), never by a string of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class Technique:
    name: str  # the sub-app (`mltk <name>`) and the runs/<name>/ folder
    package: str  # mltoolkit.<name>: its __init__ is the Python API, its cli.py the sub-app
    config: str  # "module:Class" of the config dataclass whose fields are the train options
    exports: tuple[str, ...] = ()  # the formats `mltk export` writes for it (docs/export.md)
    serves: str = ""  # what `mltk serve` decodes a request into: image, rows, observations or users (docs/serve.md)
    backends: tuple[str, ...] = ()  # what `load(run, backend=)` and `predict --backend` run the model in; 1st: native

    def cli(self) -> Any:
        """The technique's Typer sub-app (imports only typer: ``mltk --help`` stays fast)."""
        return import_module(f"{self.package}.cli").app

    def config_class(self) -> type:
        module, _, cls = self.config.partition(":")
        return getattr(import_module(module), cls)

    def check_backend(self, name: str) -> str:
        """``name`` if it is one of ``backends``, else a one-line ``UsageError``: every ``load`` refuses alike."""
        if name not in self.backends:
            from mltoolkit.core.errors import UsageError

            raise UsageError(f"unknown backend {name!r} for {self.name}; expected {' or '.join(self.backends)}")
        return name


ONNXRUNTIME = "onnxruntime"  # the backend that runs a run's ONNX export (docs/export.md)
_GRAPHS = ("onnx", "torchscript")
_TORCH = ("torch", ONNXRUNTIME)
RL = Technique("rl", "mltoolkit.rl", "mltoolkit.rl.config:DQNConfig", _GRAPHS, "observations", _TORCH)
TRANSFER = Technique(
    "transfer", "mltoolkit.transfer", "mltoolkit.transfer.config:TransferConfig", _GRAPHS, "image", _TORCH
)
BOOST = Technique(
    "boost", "mltoolkit.boost", "mltoolkit.boost.params:BoostConfig", ("onnx",), "rows", ("lightgbm", ONNXRUNTIME)
)
SEGMENT = Technique("segment", "mltoolkit.segment", "mltoolkit.segment.config:SegmentConfig", _GRAPHS, "image", _TORCH)
RECOMMEND = Technique(
    "recommend", "mltoolkit.recommend", "mltoolkit.recommend.config:RecommendConfig", ("npz", "parquet"), "users"
)

TECHNIQUES = (RL, TRANSFER, BOOST, SEGMENT, RECOMMEND)
NAMES = tuple(t.name for t in TECHNIQUES)


def get(name: str) -> Technique:
    """The technique called ``name``; an unknown name is a one-line ``DataError`` listing the known ones."""
    for technique in TECHNIQUES:
        if technique.name == name:
            return technique
    from mltoolkit.core.errors import DataError

    raise DataError(f"unknown technique {name!r}; expected one of {', '.join(NAMES)}")
