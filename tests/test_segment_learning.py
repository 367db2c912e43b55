"""`mltk segment` really learns: drawn shapes on noisy backgrounds (3 classes + background, 64x64).

LRASPP-MobileNetV3 from scratch on CPU, one thread, 16 epochs: about 1.6 minutes on a quiet core
(torch 2.14). The 64x64 images are trained at 96x96: LRASPP scores classes at 1/8 of its input, and
at 64x64 even perfect 8x8 scores upsampled back cap mIoU near 0.88 (0.96 at 112x112). No random
rescale (validation images are drawn like the training ones), and a Dice term next to cross-entropy,
which in our runs reached 0.89 ten epochs sooner than cross-entropy alone.

The thresholds come from this recipe run with training seeds 0-2 and 1 and 2 torch threads (float
rounding differs with the thread count and between CPUs, and it moves the epoch where the shapes
separate: a fresh machine once scored 0.8936 against the 0.9 this test asked for):

    seed  threads  evaluate mIoU  training-time best val mIoU
    0     1        0.8654         0.8626
    0     2        0.8334         0.8313
    1     1        0.8693         0.8659
    1     2        0.8627         0.8572
    2     1        0.8602         0.8570
    2     2        0.8415         0.8362

The same recipe at 112x112 for 32 epochs scored 0.885-0.910 in 4.7 minutes; this test asks that the
model learns the shapes, not for the last point of mIoU. Predicting background everywhere scores mIoU
0.19 here (76% of the validation pixels), and so does the model after its first epoch.
"""

from __future__ import annotations

import json

from tests.conftest import ok

EPOCHS = 16


def test_shapes_reach_val_miou_0_78(mltk, tmp_path):
    from mltoolkit.segment.synthetic import write_shapes

    data = write_shapes(tmp_path / "shapes", train=120, val=30, size=64, seed=0)
    recipe = ["--size", "96x96", "--scale", "1,1", "--loss", "ce+dice", "--optimizer", "adamw", "--lr", "5e-3"]
    fixed = ["--epochs", EPOCHS, "--batch-size", "8", "--threads", "1", "--workers", "0", "-q"]
    summary = ok(mltk("segment", "train", data, *recipe, *fixed, "--runs-dir", tmp_path / "runs")).json()
    # the val mIoU of best.pt on the 64x64 validation masks themselves (scores upsampled from 96x96)
    report = ok(mltk("segment", "evaluate", summary["run_dir"], "--format", "json", "--threads", "1")).json()
    assert report["miou"] >= 0.78, json.dumps(report)
    # training-time validation scores 96x96 masks upsampled by nearest neighbour: a little lower
    assert summary["best_val_miou"] >= 0.77, summary
