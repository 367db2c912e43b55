"""A synthetic image folder of drawn shapes (circle, square, triangle), for tests, demos and smoke runs.

``python -m mltoolkit.transfer.synthetic DIR [--train N] [--val N] [--size 64] [--seed 0]`` writes
``DIR/train/<shape>/*.png`` and ``DIR/val/<shape>/*.png``: one shape per image at a random position,
size and colour on a noisy background (core.shapes), so the class is the shape and nothing else.
``tiny_example`` is the contract test's run: a few 32-pixel images and one epoch of resnet18.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mltoolkit.core.contract import Example
from mltoolkit.core.shapes import SHAPES, draw_shapes

TINY_TRAIN = "--model resnet18 --weights none --epochs 1 --batch-size 4 --workers 0 --threads 1".split()


def make_shapes_folder(root: str | Path, train: int = 300, val: int = 90, size: int = 64, seed: int = 0) -> Path:
    """Write ``train`` and ``val`` images per split, classes balanced (round-robin over the shapes)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for shape in SHAPES:
            (root / split / shape).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            kind = i % len(SHAPES)
            image, _, _ = draw_shapes(rng, size=size, count=1, kinds=(SHAPES[kind],))
            image.save(root / split / SHAPES[kind] / f"{i:05d}.png")
    return root


def tiny_example(folder: Path) -> Example:
    """6 training and 3 validation images of 32 pixels in ``folder/shapes``; 1 epoch, --resume to 2."""
    root = make_shapes_folder(Path(folder) / "shapes", train=6, val=3, size=32)
    images = sorted(str(path) for path in (root / "val").rglob("*.png"))
    return Example(
        train_args=["--data", str(root), *TINY_TRAIN],
        predict_args=[*images, "--top-k", "2", "--threads", "1"],
        records=images,
        more_args=["--epochs", "2"],
        evaluate_args=["--workers", "0", "--threads", "1"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltoolkit.transfer.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder to write (train/ and val/ are created in it)")
    parser.add_argument("--train", type=int, default=300, help="training images (default 300)")
    parser.add_argument("--val", type=int, default=90, help="validation images (default 90)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    print(make_shapes_folder(**vars(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
