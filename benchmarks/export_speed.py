"""`mltk export` files vs their source models: latency and throughput on CPU, plus the parity figures.

For each case the model goes through mltk's own exporter (normalisation and metadata inside, parity
checked), then the source model (PyTorch eager, or LightGBM) and the exported file (ONNX Runtime, CPU
provider) run the same batches, interleaved, on the same number of threads:

- transfer resnet18 and mobilenet_v3_small at 224x224 (random weights: speed does not depend on them);
- segment lraspp_mobilenet_v3_large at 360x480;
- the rl Q-network (the default 64,64 MLP on CartPole's 4 numbers; the pixel DQN has not landed);
- boost: LightGBM's binary_classification example trained by `mltk boost train --lightgbm-config`.

Batch 1 and batch 32; p50 latency of a batch and throughput (items per second at that p50). The
issue's goal: >= 2x at batch 1 for resnet18 and >= 5x for mobilenet_v3_small, parity within 1e-4.
On a CUDA machine, CUDA rows follow: eager, TorchScript and ONNX Runtime's CUDA provider if installed.

    .venv/bin/python benchmarks/export_speed.py [--threads 2] [--repeats 30] [--cases resnet18 rl]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.export.runtime import OnnxFunction

CASES = ("resnet18", "mobilenet_v3_small", "lraspp", "rl", "boost")
BATCHES = (1, 32)
TECHNIQUE_OF = {"lraspp": "segment", "rl": "rl"}  # the others are transfer models
LGB_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lightgbm" / "binary_classification"


def torch_source(case: str) -> Any:
    """The case's model as a ``TorchSource`` (random weights; real-looking inputs are random pixels here)."""
    import torch

    from mltoolkit.export.neural import TorchSource

    rng = np.random.default_rng(0)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    if case in ("resnet18", "mobilenet_v3_small"):
        from mltoolkit.transfer.model import build_model

        pixels = rng.integers(0, 256, (4, 3, 224, 224), dtype=np.uint8)
        meta = {"input_shape": ["batch", 3, 224, 224]}
        return TorchSource(build_model(case, 10).eval(), "pixels", "logits", pixels, pixels[:2], meta, mean, std)
    if case == "lraspp":
        from mltoolkit.segment.config import SegmentConfig
        from mltoolkit.segment.model import build_model

        model = build_model(SegmentConfig(model="lraspp_mobilenet_v3_large"), 12, pretrained=False).eval()
        pixels = rng.integers(0, 256, (2, 3, 360, 480), dtype=np.uint8)
        meta = {"input_shape": ["batch", 3, 360, 480]}
        return TorchSource(model, "pixels", "scores", pixels, pixels[:1], meta, mean, std, "out")
    from mltoolkit.rl.networks import QNetwork

    torch.manual_seed(0)
    obs = rng.standard_normal((64, 4)).astype(np.float32)
    meta = {"input_shape": ["batch", 4]}
    return TorchSource(QNetwork(4, 2, (64, 64)).eval(), "observations", "q_values", obs, obs[:8], meta)


def export_torch(case: str, folder: Path, threads: int) -> tuple[Callable, Callable, np.ndarray, dict]:
    """(eager function, ONNX Runtime function, input pool, parity) for a torch case, through mltk's exporter."""
    import torch

    from mltoolkit.export import neural
    from mltoolkit.export.request import Request

    source = torch_source(case)
    request = Request(folder, TECHNIQUE_OF.get(case, "transfer"), "onnx", folder / f"{case}.onnx")
    parity = neural.export(source, request)["parity"]
    eager = source.wrapped()

    def run_eager(x: np.ndarray) -> Any:
        with torch.inference_mode():
            return eager(torch.from_numpy(x))

    return run_eager, OnnxFunction(request.output, threads), source.real, parity


def export_boost(folder: Path, threads: int) -> tuple[Callable, Callable, np.ndarray, dict]:
    """The binary example trained and exported through mltk; LightGBM's own predict is the baseline."""
    from mltoolkit import boost
    from mltoolkit.boost.data import read_data
    from mltoolkit.boost.params import config_from_lightgbm
    from mltoolkit.core.config import build_config
    from mltoolkit.export import export

    config = build_config(boost.Config, config_from_lightgbm(LGB_DATA / "train.conf"), {"threads": threads})
    run_dir = boost.train(config, runs_dir=folder, name="binary").run_dir
    entry = export(run_dir, "onnx")
    model = boost.load(run_dir).model
    rows = model.schema.encode(read_data(str(LGB_DATA / "binary.test"), side_files=False))
    function = OnnxFunction(Path(entry["file"]), threads)
    return (
        lambda X: model.booster.predict(X, num_threads=threads),
        lambda X: function(X.astype(np.float32)),
        np.asarray(rows),
        entry["parity"],
    )


def batch_of(pool: np.ndarray, size: int) -> np.ndarray:
    return np.ascontiguousarray(np.resize(pool, (size, *pool.shape[1:])))


def interleaved(functions: dict[str, Callable], x: np.ndarray, repeats: int) -> dict[str, float]:
    """p50 seconds per call of each function, alternating between them so that load drifts hit all alike."""
    for function in functions.values():  # warm-up: allocations, ORT's first-run planning
        function(x)
        function(x)
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function(x)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def rows_for(case: str, baseline: str, functions: dict[str, Callable], pool: np.ndarray, parity: dict, repeats: int):
    worst = max(parity.values(), key=lambda c: c.get("max_abs_diff", 0.0))
    for batch in BATCHES:
        x = batch_of(pool, batch)
        p50 = interleaved(functions, x, repeats if batch == 1 else max(3, repeats // 4))
        base = p50[baseline]
        for name, seconds in p50.items():
            yield {
                "case": case,
                "batch": batch,
                "runtime": name,
                "p50_ms": round(seconds * 1e3, 3),
                "items_per_s": round(batch / seconds, 1),
                "speedup": round(base / seconds, 2),
                "max_abs_diff": worst.get("max_abs_diff"),
                "argmax_equal": worst.get("argmax_equal"),
            }


def cuda_rows(case: str, folder: Path, repeats: int):
    """Eager, TorchScript and ORT's CUDA provider on the GPU (only where CUDA is present)."""
    import onnxruntime as ort
    import torch

    from mltoolkit.export import neural
    from mltoolkit.export.request import Request

    source = torch_source(case)
    device = torch.device("cuda")
    eager = source.wrapped().to(device)
    request = Request(folder, TECHNIQUE_OF.get(case, "transfer"), "torchscript", folder / f"{case}.pt")
    neural.export(source, request)
    scripted = torch.jit.load(str(request.output), map_location=device)

    def on_gpu(module: Any) -> Callable:
        def run(x: np.ndarray) -> Any:
            with torch.inference_mode():
                out = module(torch.from_numpy(x).to(device))
                torch.cuda.synchronize()
                return out

        return run

    functions = {"torch eager cuda": on_gpu(eager), "torchscript cuda": on_gpu(scripted)}
    if "CUDAExecutionProvider" in ort.get_available_providers():
        session = ort.InferenceSession(str(folder / f"{case}.onnx"), providers=["CUDAExecutionProvider"])
        functions["onnxruntime cuda"] = lambda x: session.run(None, {source.input_name: x})
    yield from rows_for(case, "torch eager cuda", functions, source.real, {"-": {}}, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per runtime at batch 1 (a quarter at 32)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    args = parser.parse_args()

    import torch

    from mltoolkit.core.console import set_quiet
    from mltoolkit.core.device import set_threads

    set_quiet(True)
    set_threads(args.threads)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="export-speed-") as tmp:
        for case in args.cases:
            if case == "boost":
                if not LGB_DATA.is_dir():
                    print(f"skipping boost: {LGB_DATA} not found")
                    continue
                base, exported, pool, parity = export_boost(Path(tmp), args.threads)
                functions, baseline = {"lightgbm": base, "onnxruntime": exported}, "lightgbm"
            else:
                base, exported, pool, parity = export_torch(case, Path(tmp), args.threads)
                functions, baseline = {"torch eager": base, "onnxruntime": exported}, "torch eager"
            rows += rows_for(case, baseline, functions, pool, parity, args.repeats)
            if case != "boost" and torch.cuda.is_available():
                rows += cuda_rows(case, Path(tmp), args.repeats)
            print_table(rows[-len(BATCHES) * len(functions) :])
    print(f"\nall cases ({args.threads} threads each, {args.repeats} interleaved calls at batch 1):")
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths)), flush=True)


if __name__ == "__main__":
    main()
