"""Finding, checking and loading image/mask pairs, and the joint augmentation of both.

Two layouts are recognised: ``DATA/<split>/images`` + ``DATA/<split>/masks`` (matching stems) and
SegNet's CamVid layout ``DATA/<split>`` + ``DATA/<split>annot``. Every mask is read and checked
before training starts (size equal to its image's, values below the class count or equal to the
ignore index), so bad data fails in seconds with the file's name instead of inside the loss.

Small data sets (CamVid: 37 MB of JPEGs) are decoded and resized once and kept in memory as uint8
tensors: on a 2-core CPU, JPEG decoding every epoch costs as much as the training step itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.errors import DataError
from mltoolkit.core.images import image_size, list_images, open_image
from mltoolkit.core.io import read_text

if TYPE_CHECKING:
    import torch
    from PIL import Image

SPLITS = ("train", "val", "test")
DEFAULT_IGNORE = 255
CACHE_LIMIT_BYTES = 2 * 1024**3


@dataclass
class Classes:
    """Class names in index order, their RGB colours, and colours that mean "ignore" in RGB masks."""

    names: list[str]
    colors: list[tuple[int, int, int]]
    ignore_colors: list[tuple[int, int, int]] = field(default_factory=list)
    colors_given: bool = False  # True when a file named the colours: RGB masks can be decoded
    values: list[int] | None = None  # each class's mask value where it is not the class index (0/255 masks)

    def __len__(self) -> int:
        return len(self.names)

    def indices(self, mask: np.ndarray) -> np.ndarray:
        """A mask of values as one of class indices (unchanged unless ``values`` says otherwise)."""
        if self.values is None:
            return mask
        out = mask.copy()
        for index, value in enumerate(self.values):
            out[mask == value] = index
        return out


def default_colors(count: int) -> list[tuple[int, int, int]]:
    """PASCAL VOC's colour map: distinct, stable colours for any number of classes."""
    colors = []
    for index in range(count):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    return colors


def _parse_color(value: Any, source: str) -> tuple[int, int, int]:
    if isinstance(value, str) and value.startswith("#") and len(value) == 7:
        return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, int) and 0 <= v < 256 for v in value):
        return tuple(value)  # type: ignore[return-value]
    raise DataError(f"{source}: colour {value!r} is not [R, G, B] or #rrggbb")


def _classes_from_entries(entries: list[Any], source: str) -> Classes:
    names, colors, ignore = [], [], []
    given = False
    for entry in entries:
        if isinstance(entry, str):
            names.append(entry)
            colors.append(None)
        elif isinstance(entry, dict) and "name" in entry:
            color = _parse_color(entry["color"], source) if "color" in entry else None
            if entry.get("ignore"):
                if color is None:
                    raise DataError(f"{source}: the ignore entry {entry['name']!r} needs a colour")
                ignore.append(color)
                continue
            names.append(str(entry["name"]))
            colors.append(color)
            given = given or color is not None
        else:
            raise DataError(f'{source}: each class is a name or {{"name": ..., "color": [R, G, B]}}, got {entry!r}')
    if not names:
        raise DataError(f"{source}: no class names")
    fallback = default_colors(len(names))
    filled = [c if c is not None else fallback[i] for i, c in enumerate(colors)]
    return Classes(names, filled, ignore, colors_given=given)


def read_classes_file(path: Path) -> Classes:
    """``classes.json`` (a list of names or of {name, color[, ignore]}) or ``classes.txt`` (one name a line,
    optionally followed by ``R G B`` or ``#rrggbb``)."""
    text = read_text(path, "classes file")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, dict) and "classes" in data:
            data = data["classes"]
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a list of classes")
        return _classes_from_entries(data, str(path))
    entries: list[Any] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) == 4 and all(p.isdigit() for p in parts[1:]):
            entries.append({"name": parts[0], "color": [int(p) for p in parts[1:]]})
        elif len(parts) == 2 and parts[1].startswith("#"):
            entries.append({"name": parts[0], "color": parts[1]})
        else:
            entries.append(line.strip())
    return _classes_from_entries(entries, str(path))


def resolve_classes(root: Path, spec: str | None) -> Classes | None:
    """``--classes`` (names or a file), else ``classes.json`` / ``classes.txt`` in the data root, else None."""
    if spec:
        path = Path(spec)
        if path.suffix.lower() in (".json", ".txt") or path.is_file():
            if not path.is_file():
                raise DataError(f"--classes {spec}: file not found")
            return read_classes_file(path)
        return _classes_from_entries([n.strip() for n in spec.split(",") if n.strip()], "--classes")
    for name in ("classes.json", "classes.txt"):
        if (root / name).is_file():
            return read_classes_file(root / name)
    return None


# ---------------------------------------------------------------------------------------------- layout


@dataclass
class Layout:
    """Where each split's images and masks are, and which convention the folder follows."""

    root: Path
    kind: str  # "folders" (split/images + split/masks) or "segnet" (split + splitannot)
    splits: dict[str, tuple[Path, Path]]


def find_layout(root: str | Path) -> Layout:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data directory not found")
    folders = {s: (root / s / "images", root / s / "masks") for s in SPLITS if (root / s / "images").is_dir()}
    if folders:
        for split, (_, masks) in folders.items():
            if not masks.is_dir():
                raise DataError(f"{root / split}: has images/ but no masks/ folder")
        return Layout(root, "folders", folders)
    segnet = {s: (root / s, root / f"{s}annot") for s in SPLITS if (root / f"{s}annot").is_dir()}
    if segnet:
        for split, (images, _) in segnet.items():
            if not images.is_dir():
                raise DataError(f"{root}: has {split}annot/ but no {split}/ folder of images")
        return Layout(root, "segnet", segnet)
    raise DataError(
        f"{root}: no segmentation data found; expected train/images + train/masks (and val/...) "
        "or the SegNet layout train/ + trainannot/"
    )


def list_pairs(layout: Layout, split: str) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of a split, matched by file stem; an image without a mask is an error."""
    if split not in layout.splits:
        raise DataError(f"{layout.root}: no {split!r} split (found {', '.join(layout.splits) or 'none'})")
    images_dir, masks_dir = layout.splits[split]
    masks = {p.stem: p for p in list_images(masks_dir, recursive=False)}
    pairs = []
    for image in list_images(images_dir, recursive=False):
        mask = masks.get(image.stem)
        if mask is None:
            raise DataError(f"{image}: image without a mask (expected {masks_dir / image.stem}.png)")
        pairs.append((image, mask))
    if not pairs:
        raise DataError(f"{images_dir}: the {split} split is empty (no images)")
    return pairs


# ---------------------------------------------------------------------------------------------- decoding


def read_mask(path: Path, classes: Classes | None, ignore_index: int = DEFAULT_IGNORE) -> np.ndarray:
    """A mask file as an (H, W) array of class indices: index PNGs as they are (through ``classes.values``
    where given), palette PNGs by index, RGB masks through the class colours (or their one channel when the
    three are equal)."""
    image = open_image(path)
    if image.mode == "P" or image.mode in ("L", "I", "I;16", "1"):
        mask = np.asarray(image).astype(np.int64)
    elif image.mode == "LA":
        mask = np.asarray(image)[..., 0].astype(np.int64)
    else:
        rgb = np.asarray(image.convert("RGB"))
        if classes is not None and classes.colors_given:
            return _colors_to_indices(rgb, classes, path, ignore_index)
        if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
            raise DataError(
                f"{path}: an RGB colour mask, but no class colours were given; list them in classes.json "
                '([{"name": ..., "color": [R, G, B]}, ...]) or save masks as class-index PNGs'
            )
        mask = rgb[..., 0].astype(np.int64)
    return classes.indices(mask) if classes is not None else mask


def _colors_to_indices(rgb: np.ndarray, classes: Classes, path: Path, ignore_index: int) -> np.ndarray:
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    table = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(classes.colors)}
    table.update({(r << 16) | (g << 8) | b: ignore_index for r, g, b in classes.ignore_colors})
    values, inverse = np.unique(codes, return_inverse=True)
    unknown = [int(v) for v in values if int(v) not in table]
    if unknown:
        v = unknown[0]
        raise DataError(
            f"{path}: colour ({v >> 16}, {(v >> 8) & 255}, {v & 255}) is not a class colour "
            '(add it to classes.json, with "ignore": true for unlabelled pixels)'
        )
    return np.array([table[int(v)] for v in values], dtype=np.int64)[inverse].reshape(codes.shape)


# ---------------------------------------------------------------------------------------------- loading


@dataclass
class Split:
    """A checked split: its (image, mask) pairs, per-class pixel counts of its masks and all their pixels."""

    pairs: list[tuple[Path, Path]]
    counts: np.ndarray
    pixels: int


def check_size(mask: np.ndarray, mask_path: Path, image_path: Path) -> None:
    """A mask must cover its image pixel for pixel (checked from the image header, without decoding)."""
    size = image_size(image_path)
    if (mask.shape[1], mask.shape[0]) != size:
        raise DataError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {image_path.name} is "
            f"{size[0]}x{size[1]} (WxH); masks must match their images pixel for pixel"
        )


def mask_values(
    pairs: list[tuple[Path, Path]], classes: Classes | None, ignore_index: int, threads: int = 1
) -> set[int]:
    """Every value found in the masks of ``pairs`` (read in ``threads``), before any is checked against a class
    count: what tells binary 0/255 masks apart and, without a classes file, how many classes there are."""
    from concurrent.futures import ThreadPoolExecutor

    def values(pair: tuple[Path, Path]) -> set[int]:
        mask = read_mask(pair[1], classes, ignore_index)
        return {int(v) for v in np.flatnonzero(np.bincount(mask.ravel()))}

    with ThreadPoolExecutor(max(1, threads)) as pool:
        return set().union(*pool.map(values, pairs))


def binary_classes(values: set[int], classes: Classes | None, ignore_index: int) -> Classes | None:
    """Masks holding exactly 0 and 255 (the most common binary format) as two classes, 255 the second; None for
    any other masks. Read with 255 as the ignore index they would hold a single class."""
    if values != {0, 255} or ignore_index == 0 or (classes is not None and len(classes) != 2):
        return None
    if classes is None:
        return Classes(["background", "foreground"], default_colors(2), values=[0, 255])
    return Classes(classes.names, classes.colors, values=[0, 255])


def check_values(mask: np.ndarray, path: Path, num_classes: int, ignore_index: int) -> np.ndarray:
    """Per-class pixel counts of a mask; values that are neither a class nor the ignore index fail here."""
    bad = ((mask >= num_classes) & (mask != ignore_index)) | (mask < 0)
    if bad.any():
        values = sorted({int(v) for v in np.unique(mask[bad])})
        hint = (
            f"; if {values[0]} marks unlabelled pixels pass --ignore-index {values[0]}"
            if len(values) == 1 and values[0] >= 0
            else ""
        )
        raise DataError(
            f"{path}: mask value{'s' if len(values) > 1 else ''} {', '.join(map(str, values[:5]))} not a class "
            f"(0..{num_classes - 1}) nor the ignore index {ignore_index}{hint}"
        )
    return np.bincount(mask[mask != ignore_index].ravel(), minlength=num_classes)[:num_classes]


def load_split(
    pairs: list[tuple[Path, Path]], classes: Classes | None, num_classes: int, ignore_index: int, threads: int = 1
) -> Split:
    """Read and check every mask (size against its image's header, values) and count class pixels.

    Only masks are decoded here (PNGs of indices: fast); images are decoded once, later, by the
    dataset in its worker, while training runs. ``threads`` read in parallel (PIL releases the GIL).
    """
    from concurrent.futures import ThreadPoolExecutor

    def check(pair: tuple[Path, Path]) -> tuple[np.ndarray, int]:
        image_path, mask_path = pair
        mask = read_mask(mask_path, classes, ignore_index)
        check_size(mask, mask_path, image_path)
        return check_values(mask, mask_path, num_classes, ignore_index), mask.size

    with ThreadPoolExecutor(max(1, threads)) as pool:
        checked = list(pool.map(check, pairs))  # in order: the first bad file in sorted order is the one named
    counts = np.sum([c for c, _ in checked], axis=0) if checked else np.zeros(num_classes, dtype=np.int64)
    return Split(pairs, counts, sum(size for _, size in checked))


def resized_pixels(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """An image as uint8 RGB (3, H, W) at ``size`` = (H, W), resized bilinearly: one function for training, predict
    and the ONNX export's inputs, so that all three see the same pixels."""
    from PIL import Image

    height, width = size
    return np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR)).transpose(2, 0, 1).copy()


def resize_pair(image: Image.Image, mask: np.ndarray, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Image (``resized_pixels``) and mask (nearest) resized to ``size`` = (H, W), as uint8 / int16 tensors."""
    import torch

    return torch.from_numpy(resized_pixels(image, size)), nearest(torch.from_numpy(mask.astype(np.int16)), size)


def nearest(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of an integer mask by index gathering (labels are never blended)."""
    import torch

    height, width = mask.shape[-2:]
    rows = ((torch.arange(size[0]) + 0.5) * height / size[0]).long().clamp_(max=height - 1)
    cols = ((torch.arange(size[1]) + 0.5) * width / size[1]).long().clamp_(max=width - 1)
    return mask[..., rows[:, None], cols[None, :]]


# ---------------------------------------------------------------------------------------------- datasets


class PairDataset:
    """A map-style dataset of (normalised float image, int64 mask) at ``size``, augmented when ``train``.

    A plain class at module level (a DataLoader needs only ``__len__`` and ``__getitem__``), so that
    DataLoader workers started by spawning (macOS, Windows) can pickle it. With ``cache`` each pair is
    decoded and resized (to ``size`` times the largest scale) the first time it is asked for and kept as
    uint8/int16 tensors; in a persistent DataLoader worker the cache lives in that worker, so the decoding
    of epoch 1 overlaps training like any data loader.
    """

    def __init__(
        self,
        split: Split,
        classes: Classes | None,
        size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        ignore_index: int,
        train: bool,
        scale: tuple[float, float] = (1.0, 1.0),
        cache: bool = True,
    ) -> None:
        self.split, self.classes, self.size, self.mean, self.std = split, classes, size, mean, std
        self.ignore_index, self.train, self.scale = ignore_index, train, scale
        self.base = base_size(size, scale) if train else size
        self.cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.split.pairs)

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        image_path, mask_path = self.split.pairs[index]
        raw = read_mask(mask_path, self.classes, self.ignore_index)
        pair = resize_pair(open_image(image_path), raw, self.base)  # resized_pixels makes it RGB
        if self.cache is not None:
            self.cache[index] = pair
        return pair

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load(index)
        image = image.float().div_(255)
        if self.train:
            image, mask = augment(image, mask, self.size, self.scale, self.ignore_index)
        image = normalize(image, self.mean, self.std)
        return image, mask.long()


def base_size(size: tuple[int, int], scale: tuple[float, float]) -> tuple[int, int]:
    """The cached training resolution: the crop size times the largest random scale."""
    return round(size[0] * scale[1]), round(size[1] * scale[1])


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    import torch

    return (image - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def augment(
    image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int], scale: tuple[float, float], ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rescale, random crop (padding with the ignore index) and horizontal flip, identical for both.

    ``image`` arrives at ``size * scale[1]``; a factor drawn from ``scale`` (relative to ``size``)
    picks the resolution, then a ``size`` crop is cut at a random place.
    """
    import torch
    import torch.nn.functional as F

    factor = float(torch.empty(1).uniform_(scale[0], scale[1]))
    scaled = (max(1, round(size[0] * factor)), max(1, round(size[1] * factor)))
    if scaled != tuple(image.shape[-2:]):
        image = F.interpolate(image[None], size=scaled, mode="bilinear", align_corners=False, antialias=True)[0]
        mask = nearest(mask, scaled)
    pad_h, pad_w = max(0, size[0] - scaled[0]), max(0, size[1] - scaled[1])
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
        mask = F.pad(mask, (0, pad_w, 0, pad_h), value=ignore_index)
    top = int(torch.randint(0, image.shape[1] - size[0] + 1, (1,)))
    left = int(torch.randint(0, image.shape[2] - size[1] + 1, (1,)))
    image = image[:, top : top + size[0], left : left + size[1]]
    mask = mask[top : top + size[0], left : left + size[1]]
    if torch.rand(1) < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    return image.contiguous(), mask.contiguous()


def cache_fits(pairs: int, size: tuple[int, int], copies: int = 1) -> bool:
    """Whether decoded uint8 images and int16 masks at ``size`` (one copy per worker) stay under 2 GB."""
    return pairs * size[0] * size[1] * (3 + 2) * max(1, copies) < CACHE_LIMIT_BYTES
