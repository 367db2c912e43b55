"""Torch models to ONNX (torch's dynamo exporter) and TorchScript, normalisation inside, checked for parity.

A technique's adapter gives a ``TorchSource``: its loaded model, the input layout a consumer feeds
(raw uint8 RGB pixels for images), samples of real and random inputs, and the metadata. ``export``
wraps the model with its preprocessing (``Exportable``), writes the file atomically and compares
the file, run by ONNX Runtime or ``torch.jit.load``, with the eager model before it is published.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mltoolkit.core.errors import DataError
from mltoolkit.core.io import atomic_path
from mltoolkit.export import parity
from mltoolkit.export.request import Request
from mltoolkit.export.runtime import OnnxFunction


class Exportable(nn.Module):
    """The model as shipped: raw input in, class scores (or labels) out.

    With ``mean``/``std`` the input is uint8 RGB pixels (N, 3, H, W), scaled to [0, 1] and normalised
    inside the graph exactly as the technique's own predict does (``ToTensor`` then ``Normalize``).
    """

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        key: str | None = None,
        labels: bool = False,
        half: bool = False,
    ) -> None:
        super().__init__()
        self.model, self.key, self.labels, self.half = model, key, labels, half
        self.pixels = mean is not None
        if self.pixels:
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pixels:
            x = (x.float().div(255) - self.mean) / self.std
        out = self.model(x.half() if self.half else x)
        if self.key is not None:
            out = out[self.key]
        out = out.float()
        return out.argmax(1) if self.labels else out


@dataclass
class TorchSource:
    """What a technique adapter hands over: the model and everything the file and its check need."""

    model: nn.Module  # eval mode, on the CPU, float32
    input_name: str  # "observations" | "pixels"
    output_name: str  # "q_values" | "logits" | "scores"
    real: np.ndarray  # a sample of the run's own inputs, in the exported layout
    random: np.ndarray  # random inputs of the same layout and dtype
    metadata: dict[str, Any]  # ONNX metadata_props / TorchScript extra file (values JSON-encoded)
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    key: str | None = None  # the output of a model returning a dict (torchvision segmentation: "out")
    notes: list[str] = field(default_factory=list)

    def wrapped(self, labels: bool = False, half: bool = False) -> Exportable:
        model = copy.deepcopy(self.model).half() if half else self.model
        return Exportable(model, self.mean, self.std, self.key, labels, half).eval()


def export(source: TorchSource, request: Request) -> dict[str, Any]:
    """Write ``request.output`` and return the parity figures; exit 3 (nothing written) when they fail."""
    module = source.wrapped(request.labels, request.half)
    reference = source.wrapped()
    example = torch.from_numpy(_batch_of(source.real if len(source.real) else source.random, request.batch or 2))
    metadata = {
        **request.provenance(),
        **source.metadata,
        "input_shape": [request.batch or "batch", *source.metadata["input_shape"][1:]],
        "input_name": source.input_name,
        "output_name": "labels" if request.labels else source.output_name,
        "batch": request.batch or "dynamic",
        "precision": "fp16" if request.half else "fp32",
    }
    with atomic_path(request.output) as tmp:
        if request.fmt == "onnx":
            _write_onnx(module, example, tmp, source, request, metadata)
            run = OnnxFunction(tmp)
        else:
            _write_torchscript(module, example, tmp, metadata)
            run = _torchscript_function(tmp)
        checks = {
            name: _check(reference, run, sample, request)
            for name, sample in (("real", source.real), ("random", source.random))
            if len(sample)
        }
        parity.check(checks, request.half, f"{request.technique} {request.fmt}")
    return {"parity": checks, "metadata": metadata}


def _check(reference: nn.Module, run: Callable[[np.ndarray], np.ndarray], sample: np.ndarray, request: Request) -> dict:
    with torch.inference_mode():
        expected = reference(torch.from_numpy(sample)).numpy()
    got = _in_batches(run, sample, request.batch)
    if request.labels:
        return parity.compare_labels(expected, got)
    return parity.compare(expected, got, class_axis=1)


def _in_batches(run: Callable[[np.ndarray], np.ndarray], sample: np.ndarray, batch: int | None) -> np.ndarray:
    """Run all of ``sample``; a fixed-batch graph gets it in chunks of its size, the last one padded."""
    if batch is None:
        return run(sample)
    chunks = [sample[i : i + batch] for i in range(0, len(sample), batch)]
    return np.concatenate([run(_batch_of(chunk, batch))[: len(chunk)] for chunk in chunks])


def _batch_of(sample: np.ndarray, size: int) -> np.ndarray:
    """Exactly ``size`` rows of ``sample``, repeating it when it is shorter (an example or a padded chunk)."""
    return np.ascontiguousarray(np.resize(sample, (size, *sample.shape[1:])))


def _write_onnx(
    module: nn.Module, example: torch.Tensor, path: Path, source: TorchSource, request: Request, metadata: dict
) -> None:
    """``torch.onnx.export`` through the dynamo exporter (torch's supported path), then the metadata."""
    import onnx

    options: dict[str, Any] = {
        "dynamo": True,
        "verbose": False,  # its progress lines go to stdout otherwise
        "input_names": [source.input_name],
        "output_names": [metadata["output_name"]],
    }
    if request.batch is None:
        options["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1)},)
    if request.opset is not None:
        options["opset_version"] = request.opset
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (example,), **options)
    except Exception as exc:  # torch.onnx raises many types; one line names the stage that failed
        raise DataError(f"torch.onnx could not export the model: {str(exc).strip().splitlines()[0]}") from None
    proto = program.model_proto
    onnx.helper.set_model_props(proto, encode_metadata(metadata))
    onnx.save(proto, str(path))


def _write_torchscript(module: nn.Module, example: torch.Tensor, path: Path, metadata: dict) -> None:
    """``torch.jit.trace``; the metadata travels as the extra file ``mltk.json`` inside the archive."""
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # trace's deprecation notice and its tracer warnings
        traced = torch.jit.trace(module, example, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={"mltk.json": json.dumps(encode_metadata(metadata))})


def _torchscript_function(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        loaded = torch.jit.load(str(path), map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return loaded(torch.from_numpy(x)).numpy()

    return run


def encode_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    """ONNX metadata values are strings: text stays text, everything else is JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in metadata.items()}
