"""Drawn shapes on noisy backgrounds: synthetic images with exact labels and masks.

Used by the transfer (one shape, its kind is the class) and segment (shapes and their pixel mask)
tests and demos, so both can show real learning without downloading a data set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

SHAPES = ("circle", "square", "triangle")


def draw_shapes(
    rng: np.random.Generator, size: int = 64, count: int = 1, kinds: tuple[str, ...] = SHAPES, noise: float = 20.0
) -> tuple[Image.Image, np.ndarray, list[int]]:
    """Draw ``count`` shapes at random positions, sizes and colours on a noisy random background.

    Returns the RGB image, a uint8 mask (0 = background, ``1 + kinds.index(kind)`` under a shape)
    and the kind index of each shape drawn. Later shapes are drawn over earlier ones in both.
    """
    from PIL import Image, ImageDraw

    background = rng.integers(0, 256, size=3)
    pixels = np.clip(background + rng.normal(0, noise, size=(size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    mask = Image.new("L", (size, size), 0)
    drawn: list[int] = []
    for _ in range(count):
        kind = int(rng.integers(len(kinds)))
        radius = rng.uniform(0.15, 0.3) * size
        cx, cy = rng.uniform(radius, size - radius, size=2)
        colour = tuple(int(c) for c in (background + rng.integers(80, 176, size=3)) % 256)
        box = [cx - radius, cy - radius, cx + radius, cy + radius]
        for canvas, fill in ((ImageDraw.Draw(image), colour), (ImageDraw.Draw(mask), kind + 1)):
            if kinds[kind] == "circle":
                canvas.ellipse(box, fill=fill)
            elif kinds[kind] == "square":
                canvas.rectangle(box, fill=fill)
            else:
                canvas.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=fill)
        drawn.append(kind)
    return image, np.asarray(mask, dtype=np.uint8), drawn
