"""`mltk transfer` really learns: from random weights to >= 0.95 validation accuracy on drawn shapes
(circle, square, triangle at random positions, sizes and colours, 64x64) within 2 minutes of CPU."""

from __future__ import annotations

import resource

from tests.conftest import fails, ok

# The recipe (docs/transfer.md): resnet18 from scratch at 48 px, AdamW with a one-cycle schedule,
# many distinct images rather than many epochs (the colours vary, so data beats repetition).
RECIPE = [
    "--weights", "none", "--model", "resnet18", "--image-size", "48", "--epochs", "4", "--batch-size", "32",
    "--optimizer", "adamw", "--lr", "0.002", "--schedule", "onecycle", "--augment", "none",
    "--threads", "1", "--workers", "0", "--seed", "0",
]  # fmt: skip


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_learns_shapes_from_scratch(mltk, tmp_path):
    from mltoolkit.transfer.synthetic import make_shapes_folder

    data = make_shapes_folder(tmp_path / "shapes", train=1800, val=150, size=64, seed=1)
    start = _cpu_seconds()
    out = ok(mltk("transfer", "finetune", "--data", data, *RECIPE, "--runs-dir", tmp_path / "runs")).json()
    cpu = _cpu_seconds() - start
    assert out["best_val_acc"] >= 0.95, out
    assert cpu < 120, f"took {cpu:.0f} s of CPU"
    fails(mltk("transfer", "evaluate", out["run_dir"], "--data", tmp_path / "none"), 3, "none")
