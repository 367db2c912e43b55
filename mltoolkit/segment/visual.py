"""Masks people can look at: palette PNGs in the class colours, and masks blended over their image (the overlay
that ``mltk segment predict --overlay`` writes and ``mltk serve`` sends back)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mltoolkit.core.io import atomic_path

if TYPE_CHECKING:
    from PIL import Image


def palette_image(mask: np.ndarray, colors: Sequence[tuple[int, int, int]]) -> Image.Image:
    """A mode-P image whose pixel values are the class indices and whose palette holds the class colours."""
    from PIL import Image

    image = Image.fromarray(mask.astype(np.uint8), "P")
    flat = [c for color in colors for c in color]
    image.putpalette(flat + [0] * (768 - len(flat)))
    return image


def colorize(mask: np.ndarray, colors: Sequence[tuple[int, int, int]], ignore_index: int | None = None) -> np.ndarray:
    """(H, W) class indices to (H, W, 3) colours; ignored or unknown pixels are black."""
    table = np.zeros((max(256, len(colors)), 3), dtype=np.uint8)
    table[: len(colors)] = np.asarray(colors, dtype=np.uint8)
    clipped = np.where((mask >= 0) & (mask < len(colors)), mask, 255 if len(colors) <= 255 else 0)
    out = table[clipped]
    if ignore_index is not None:
        out[mask == ignore_index] = 0
    return out


def overlay(
    image: Image.Image, mask: np.ndarray, colors: Sequence[tuple[int, int, int]], alpha: float = 0.5
) -> np.ndarray:
    """The image as (H, W, 3) uint8 with each pixel's class colour blended in at ``alpha``; a class coloured black
    (background, in the PASCAL VOC convention) leaves its pixels as they are. ``mask`` is at the image's size."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    colours = colorize(mask, colors).astype(np.float32)
    painted = colours.any(axis=-1)
    pixels[painted] = (1 - alpha) * pixels[painted] + alpha * colours[painted]
    return pixels.round().astype(np.uint8)


def save_png(image: Image.Image, path: Path) -> Path:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def plot_examples(
    path: Path,
    examples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    colors: Sequence[tuple[int, int, int]],
    ignore_index: int,
    title: str = "",
) -> Path:
    """A grid of (image, true mask, predicted mask) rows: a quick look at what the model learned."""
    from mltoolkit.core.plots import figure, save_figure

    fig, axes = figure(len(examples), 3, size=(3.2, 2.6))
    for row, (image, truth, predicted) in zip(axes, examples):
        panels = (image, colorize(truth, colors, ignore_index), colorize(predicted, colors))
        for ax, picture, label in zip(row, panels, ("image", "truth", "prediction")):
            ax.imshow(picture)
            ax.set_title(label, fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
