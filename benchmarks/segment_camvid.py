"""mltk segment vs a plain torchvision-reference training loop on CamVid, same budget, same run.

The plain loop is torchvision's segmentation reference recipe (references/segmentation: random
resize 0.5-2x of the base size, horizontal flip, random crop, SGD lr 0.01 momentum 0.9 wd 1e-4,
poly LR stepped per iteration, cross-entropy with the ignore index, confusion-matrix mIoU) with
``lraspp_mobilenet_v3_large`` from scratch, batch 8, 4 epochs at 96x128 (HxW), decoding the
JPEGs in a DataLoader worker every epoch. Its wall time, measured here, becomes the
``--time-budget`` of ``mltk segment train`` on the same data, so both get the same clock.

Prints both val mIoU figures (the same confusion matrix over the 101 val images resized to 96x128),
the training throughput of each (images per second of training loop), their ratios, and the load.

    .venv/bin/python benchmarks/segment_camvid.py [--data ../shared/data/CamVid] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent


def plain_reference_loop(data: Path, size: tuple[int, int], epochs: int, batch: int, threads: int, seed: int) -> dict:
    """The reference recipe, written out as a user would without mltk."""
    import torch
    import torch.nn.functional as F
    import torchvision
    from PIL import Image
    from torchvision.transforms import functional as TF

    torch.manual_seed(seed)
    random.seed(seed)
    torch.set_num_threads(threads)
    ignore = 11
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    base = size[0]

    class CamVid(torch.utils.data.Dataset):
        def __init__(self, split: str, train: bool) -> None:
            self.images = sorted((data / split).glob("*.jpg")) + sorted((data / split).glob("*.png"))
            self.masks = [data / f"{split}annot" / f"{p.stem}.png" for p in self.images]
            self.train = train

        def __len__(self) -> int:
            return len(self.images)

        def __getitem__(self, i: int):
            image, target = Image.open(self.images[i]).convert("RGB"), Image.open(self.masks[i])
            if self.train:
                side = random.randint(int(0.5 * base), int(2.0 * base))
                image = TF.resize(image, side)
                target = TF.resize(target, side, interpolation=TF.InterpolationMode.NEAREST)
                if random.random() < 0.5:
                    image, target = TF.hflip(image), TF.hflip(target)
                pad_h, pad_w = max(0, size[0] - image.height), max(0, size[1] - image.width)
                image = TF.pad(image, [0, 0, pad_w, pad_h], fill=0)
                target = TF.pad(target, [0, 0, pad_w, pad_h], fill=ignore)
                top = random.randint(0, image.height - size[0])
                left = random.randint(0, image.width - size[1])
                image, target = TF.crop(image, top, left, *size), TF.crop(target, top, left, *size)
            else:
                image = TF.resize(image, base)
                target = TF.resize(target, base, interpolation=TF.InterpolationMode.NEAREST)
            x = TF.normalize(TF.to_tensor(image), mean, std)
            return x, torch.as_tensor(np.array(target), dtype=torch.int64)

    started = time.monotonic()
    workers = max(0, min(8, len(os.sched_getaffinity(0)) - 1))
    train_loader = torch.utils.data.DataLoader(
        CamVid("train", True),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    val_loader = torch.utils.data.DataLoader(CamVid("val", False), batch_size=batch, num_workers=workers)
    model = torchvision.models.get_model(
        "lraspp_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=11
    )
    for m in model.modules():  # 0.01 (torchvision's MobileNetV3 default) collapses short runs: see the issue
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    total = len(train_loader) * epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda x: (1 - x / total) ** 0.9)
    history, train_seconds, train_images = [], 0.0, 0
    for epoch in range(epochs):
        model.train()
        tick = time.monotonic()
        for x, y in train_loader:
            loss = F.cross_entropy(model(x)["out"], y, ignore_index=ignore)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            train_images += x.shape[0]
        train_seconds += time.monotonic() - tick
        model.eval()
        confusion = torch.zeros(11, 11, dtype=torch.int64)
        with torch.inference_mode():
            for x, y in val_loader:
                pred = model(x)["out"].argmax(1)
                keep = y != ignore
                confusion += torch.bincount(11 * y[keep] + pred[keep], minlength=121).reshape(11, 11)
        c = confusion.double()
        iou = c.diag() / (c.sum(0) + c.sum(1) - c.diag())
        history.append(
            {
                "epoch": epoch + 1,
                "miou": float(iou[~iou.isnan()].mean()),
                "pixel_accuracy": float(c.diag().sum() / c.sum()),
            }
        )
        print(f"  plain epoch {epoch + 1}: val mIoU {history[-1]['miou']:.4f}", file=sys.stderr, flush=True)
    return {
        "wall_s": time.monotonic() - started,
        "final_miou": history[-1]["miou"],
        "best_miou": max(h["miou"] for h in history),
        "pixel_accuracy": history[-1]["pixel_accuracy"],
        "images_per_s": train_images / train_seconds,
    }


def mltk_run(data: Path, size: str, budget_min: float, batch: int, threads: int, seed: int, runs: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "mltoolkit",
        "segment",
        "train",
        "--data",
        str(data),
        "--size",
        size,
        "--batch-size",
        str(batch),
        "--time-budget",
        f"{budget_min:.4f}",
        "--threads",
        str(threads),
        "--seed",
        str(seed),
        "--runs-dir",
        str(runs),
        "--name",
        "bench",
        "--quiet",
    ]
    started = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True, cwd=HERE)
    wall = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"mltk failed ({out.returncode}): {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    metrics = [json.loads(line) for line in (Path(result["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    return {**result, "process_wall_s": wall, "final_miou": metrics[-1].get("miou")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent / "shared" / "data" / "CamVid")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (1 is fastest on a busy box)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the plain loop [default: 4]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.data / "trainannot").is_dir():
        raise SystemExit(f"{args.data}: CamVid not found (pass --data)")
    load = os.getloadavg()
    print(f"segment_camvid: lraspp_mobilenet_v3_large from scratch, 96x128 (HxW), batch 8, threads {args.threads}")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    plain = plain_reference_loop(args.data, (96, 128), args.epochs, 8, args.threads, args.seed)
    print(
        f"plain reference loop: {args.epochs} epochs in {plain['wall_s']:.1f} s  "
        f"val mIoU final {plain['final_miou']:.4f} (best {plain['best_miou']:.4f})  "
        f"pixel acc {plain['pixel_accuracy']:.4f}  train {plain['images_per_s']:.1f} img/s",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as runs:
        ours = mltk_run(args.data, "96x128", plain["wall_s"] / 60, 8, args.threads, args.seed, Path(runs))
    print(
        f"mltk segment train:   {ours['epochs']} epochs in {ours['wall_time_s']:.1f} s "
        f"(budget {plain['wall_s']:.1f} s; "
        f"process incl. start-up {ours['process_wall_s']:.1f} s)  val mIoU best {ours['best_val_miou']:.4f} "
        f"(final {ours['final_miou']:.4f})  pixel acc {ours['val_pixel_accuracy']:.4f}  "
        f"train {ours['train_images_per_s']:.1f} img/s"
    )
    print(
        f"ratios mltk/plain: val mIoU {ours['best_val_miou'] / plain['final_miou']:.2f}x  "
        f"training images/s {ours['train_images_per_s'] / plain['images_per_s']:.2f}x  "
        f"wall {ours['wall_time_s'] / plain['wall_s']:.2f}x"
    )
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
