"""A synthetic segmentation data set: drawn circles, squares and triangles on noisy backgrounds.

``python -m mltoolkit.segment.synthetic DIR`` writes ``DIR/{train,val}/{images,masks}`` (or the
SegNet layout with ``--layout segnet``) and a ``classes.json``; labels are exact, so a model that
learns shows it within a minute of CPU (tests, ``make demo``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mltoolkit.core.contract import Example
from mltoolkit.core.shapes import SHAPES, draw_shapes

CLASSES = [
    {"name": "background", "color": [0, 0, 0]},
    {"name": "circle", "color": [230, 25, 75]},
    {"name": "square", "color": [60, 180, 75]},
    {"name": "triangle", "color": [0, 130, 200]},
]


def write_shapes(
    root: str | Path,
    *,
    train: int = 160,
    val: int = 40,
    size: int = 64,
    shapes: int = 2,
    layout: str = "folders",
    seed: int = 0,
) -> Path:
    """Write the data set under ``root`` and return it; masks are index PNGs (0 = background)."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        if layout == "segnet":
            images_dir, masks_dir = root / split, root / f"{split}annot"
        else:
            images_dir, masks_dir = root / split / "images", root / split / "masks"
        images_dir.mkdir(parents=True, exist_ok=True)
        masks_dir.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, mask, _ = draw_shapes(rng, size, int(rng.integers(1, shapes + 1)), SHAPES, noise=20.0)
            image.save(images_dir / f"{split}_{index:04d}.png")
            Image.fromarray(mask, "L").save(masks_dir / f"{split}_{index:04d}.png")
    (root / "classes.json").write_text(json.dumps(CLASSES, indent=1) + "\n", encoding="utf-8")
    return root


def tiny_example(folder: Path) -> Example:
    """4 training and 2 validation images of 32 pixels in ``folder/shapes``; 1 epoch, --resume to 2."""
    root = write_shapes(Path(folder) / "shapes", train=4, val=2, size=32)
    images = sorted(str(path) for path in (root / "val" / "images").glob("*.png"))
    return Example(
        train_args=[str(root), *"--size 32 --epochs 1 --batch-size 2 --workers 0 --threads 1".split()],
        predict_args=[*images, "--output", str(Path(folder) / "masks"), "--threads", "1"],
        records=images,
        more_args=["--epochs", "2"],
        evaluate_args=["--threads", "1"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder to write the data set into")
    parser.add_argument("--train", type=int, default=160, help="training images [default: 160]")
    parser.add_argument("--val", type=int, default=40, help="validation images [default: 40]")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels [default: 64]")
    parser.add_argument("--shapes", type=int, default=2, help="at most this many shapes per image [default: 2]")
    parser.add_argument("--layout", choices=("folders", "segnet"), default="folders")
    parser.add_argument("--seed", type=int, default=0)
    print(write_shapes(**vars(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
