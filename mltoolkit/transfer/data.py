"""Image folders: finding the classes and splits, checking the images, and feeding them to a model.

Layouts: ``DATA/train/<class>/*`` + ``DATA/val/<class>/*`` (the tutorial's), or one ``DATA/<class>/*``
tree split into train and validation by a stratified, seeded ``val_fraction``. Files Pillow does not
know by extension are ignored (README, .DS_Store); a file with an image extension that cannot be read
is named in a warning and skipped, or is exit 3 with ``strict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.errors import DataError
from mltoolkit.core.images import image_problem, image_size, list_images, load_rgb, report_bad_image

if TYPE_CHECKING:
    import torch

Sample = tuple[str, int]  # (path, class index)


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_tree(root: Path, classes: Sequence[str] | None = None) -> tuple[list[str], list[Sample]]:
    """Classes (sorted sub-folder names, like ImageFolder) and their images; empty classes are exit 3.

    With ``classes`` given (a validation or evaluation tree), every folder must be one of them and
    the labels follow that order; a class without a folder is the caller's to check.
    """
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    folders = _visible_dirs(root)
    if not folders:
        raise DataError(f"{root}: no class folders; expected {root}/<class>/<image files>")
    if classes is None and len(folders) < 2:
        raise DataError(f"{root}: one class folder ({folders[0].name}); a classifier needs at least 2 classes")
    names = [f.name for f in folders]
    if classes is not None:
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise DataError(f"{root / unknown[0]}: class {unknown[0]!r} is not one of the model's classes")
    index = {name: i for i, name in enumerate(classes if classes is not None else names)}
    samples: list[Sample] = []
    for folder in folders:
        images = list_images(folder)
        if not images:
            raise DataError(f"{folder}: class folder holds no images")
        samples += [(str(p), index[folder.name]) for p in images]
    return list(classes if classes is not None else names), samples


@dataclass
class Splits:
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    layout: str  # "train/val" or "split"


def find_splits(data: str | Path, val_fraction: float, seed: int) -> Splits:
    """The train and validation samples of ``data`` in either layout (see the module docstring)."""
    root = Path(data).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    train_dir, val_dir = root / "train", root / "val"
    if train_dir.is_dir() and val_dir.is_dir():
        classes, train = scan_class_tree(train_dir)
        val_names = {f.name for f in _visible_dirs(val_dir)}
        for name in classes:
            if name not in val_names:
                raise DataError(f"{val_dir / name}: class {name!r} is in train but has no validation folder")
        _, val = scan_class_tree(val_dir, classes)
        return Splits(classes, train, val, "train/val")
    tree = train_dir if train_dir.is_dir() else root
    classes, samples = scan_class_tree(tree)
    train, val = stratified_split(samples, classes, val_fraction, seed, tree)
    return Splits(classes, train, val, "split")


def stratified_split(
    samples: list[Sample], classes: list[str], fraction: float, seed: int, root: Path
) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``fraction`` of every class (at least one image each), reproducibly for ``seed``."""
    rng = np.random.default_rng(seed)
    train: list[Sample] = []
    val: list[Sample] = []
    for label, name in enumerate(classes):
        members = [s for s in samples if s[1] == label]
        if len(members) < 2:
            raise DataError(f"{root / name}: needs at least 2 images to hold one out for validation")
        order = rng.permutation(len(members))
        held = min(len(members) - 1, max(1, round(len(members) * fraction)))
        val += [members[i] for i in sorted(order[:held])]
        train += [members[i] for i in sorted(order[held:])]
    return train, val


def check_images(samples: Sequence[Sample], strict: bool, warn_skipped: bool = True) -> list[Sample]:
    """Drop the files Pillow cannot identify or verify (header, PNG checksums), warning for each
    (unless ``warn_skipped`` is False: torchrun's other processes, which check the same files).

    ``verify`` reads no pixel data, so this is cheap; damage it cannot see (a truncated JPEG) is
    caught when the image is decoded, and skipped then in the same way.
    """
    good: list[Sample] = []
    for path, label in samples:
        problem = image_problem(path)
        if problem is None:
            good.append((path, label))
        elif strict or warn_skipped:
            report_bad_image(path, problem, strict)
    return good


@dataclass
class Preprocessing:
    """What turns a file into the model's input: the pretrained weights' own resize, crop, mean and std."""

    crop_size: int
    resize_size: int
    mean: list[float]
    std: list[float]
    interpolation: str = "bilinear"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def preprocessing_for(
    model_name: str, source: Any, image_size: int | None, native_size: int | None = None
) -> Preprocessing:
    """The preprocessing of the weights in use (or the model's default weights for a file or none).

    ``image_size`` overrides the crop (small inputs train fast from scratch) and scales the resize
    by the same ratio (224 -> 256 becomes 64 -> 73). Without it, ``native_size`` (the images' own
    size, given when training from scratch) sets the resize, so that nothing is upscaled past it: pixels
    that were never there cost time and teach random weights nothing. Either way the crop is at least
    the model's smallest input (``min_size`` in the weights' metadata: 75 for inception_v3, 224 for ViT).
    """
    from mltoolkit.core.weights import reference_weights

    reference = reference_weights(model_name, source)
    crop, resize, mean, std, interpolation = 224, 256, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], "bilinear"
    least = 16
    if reference is not None:
        least = max(least, *reference.meta.get("min_size", (least,)))
        preset = reference.transforms()
        if hasattr(preset, "crop_size"):
            crop, resize = int(preset.crop_size[0]), int(preset.resize_size[0])
            mean, std, interpolation = list(preset.mean), list(preset.std), preset.interpolation.value
    if image_size is None and native_size is not None:
        image_size = min(crop, max(least, round(native_size * crop / resize)))
    if image_size is not None:
        if image_size < least:
            raise DataError(f"--image-size {image_size}: {model_name} takes images of at least {least} px")
        resize, crop = round(image_size * resize / crop), image_size
    return Preprocessing(crop, resize, mean, std, interpolation)


def median_short_side(samples: Sequence[Sample], count: int = 64) -> int:
    """The median shorter side of ``count`` images spread over ``samples`` (Pillow reads only the headers)."""
    return int(np.median([min(image_size(path)) for path, _ in samples[:: max(1, len(samples) // count)][:count]]))


def eval_transform(pre: Preprocessing) -> Any:
    from torchvision import transforms as T

    mode = T.InterpolationMode(pre.interpolation)
    return T.Compose(
        [
            T.Resize(pre.resize_size, interpolation=mode),
            T.CenterCrop(pre.crop_size),
            T.ToTensor(),
            T.Normalize(pre.mean, pre.std),
        ]
    )


def train_transform(pre: Preprocessing, augment: str) -> Any:
    """``none``: the eval transform; ``basic``: RandomResizedCrop + flip (the tutorial's);
    ``strong``: basic + TrivialAugment + RandomErasing (torchvision's classification reference)."""
    from torchvision import transforms as T

    if augment == "none":
        return eval_transform(pre)
    mode = T.InterpolationMode(pre.interpolation)
    steps: list[Any] = [T.RandomResizedCrop(pre.crop_size, interpolation=mode), T.RandomHorizontalFlip()]
    if augment == "strong":
        steps.append(T.TrivialAugmentWide(interpolation=mode))
    steps += [T.ToTensor(), T.Normalize(pre.mean, pre.std)]
    if augment == "strong":
        steps.append(T.RandomErasing(p=0.25))
    if augment not in ("basic", "strong"):
        raise DataError(f"unknown --augment {augment!r}; expected auto, none, basic or strong")
    return T.Compose(steps)


class DecodeFailures:
    """Reports each file of ``samples`` that fails to decode (batch indices from ``collate``) once: a warning, or
    exit 3 with ``strict``."""

    def __init__(self, samples: Sequence[Sample], strict: bool) -> None:
        self.samples, self.strict, self.reported = samples, strict, set[str]()

    def __call__(self, indices: list[int]) -> None:
        for path in sorted({self.samples[i][0] for i in indices} - self.reported):
            self.reported.add(path)
            report_bad_image(path, "cannot be decoded", self.strict)


class ImageDataset:
    """``(tensor, label)`` per sample; ``None`` in place of the tensor when the file cannot be decoded.

    A ``None`` survives into the batch (see ``collate``) so the main process can warn or stop with
    a clean message instead of a worker's traceback.
    """

    def __init__(self, samples: Sequence[Sample], transform: Any) -> None:
        self.samples, self.transform = list(samples), transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        path, label = self.samples[index]
        try:
            image = load_rgb(path)
        except Exception:  # decoding errors come in many types; the message is rebuilt in the main process
            return None, label, index
        return self.transform(image), label, index


def collate(batch: list[tuple[Any, int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Stack the good samples; return ``(images, labels, indices, bad_indices)``."""
    import torch

    good = [item for item in batch if item[0] is not None]
    bad = [item[2] for item in batch if item[0] is None]
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), bad
    images = torch.stack([item[0] for item in good])
    labels = torch.tensor([item[1] for item in good], dtype=torch.long)
    indices = torch.tensor([item[2] for item in good], dtype=torch.long)
    return images, labels, indices, bad
