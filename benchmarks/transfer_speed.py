"""mltk transfer vs the PyTorch transfer-learning tutorial's loop, same data, model, batch and threads.

1. Fine-tuning throughput: training images/s of ``mltk transfer finetune`` against a plain loop
   written like the tutorial's ``train_model`` (ImageFolder + DataLoader, loss.item() per batch).
2. Feature extraction: an epoch of ``--mode feature-extract`` after the first (cached features, head
   only) against the tutorial's fixed-feature-extractor epoch (frozen backbone run every epoch),
   both from the same frozen backbone file, with their validation accuracies.

Pretrained weights cannot be downloaded on the build machines: both sides start from the same
randomly initialised resnet18 saved to a file (speed does not depend on the weight values).

    python benchmarks/transfer_speed.py [--data ../shared/data/hymenoptera_data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = os.environ.get("MLTK_HYMENOPTERA", str(ROOT.parent / "shared" / "data" / "hymenoptera_data"))


def tutorial_loaders(data: str, batch_size: int, workers: int, train_augment: bool):
    """The tutorial's data pipeline: ImageFolder + its transforms, shuffled DataLoaders."""
    import torch
    from torchvision import datasets, transforms

    normalize = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    train_tf = transforms.Compose(
        [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalize]
    )
    val_tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(), normalize])
    sets = {
        "train": datasets.ImageFolder(os.path.join(data, "train"), train_tf if train_augment else val_tf),
        "val": datasets.ImageFolder(os.path.join(data, "val"), val_tf),
    }
    return {
        phase: torch.utils.data.DataLoader(sets[phase], batch_size=batch_size, shuffle=True, num_workers=workers)
        for phase in sets
    }


def tutorial_model(weights_file: Path, classes: int, freeze: bool):
    import torch
    import torchvision

    model = torchvision.models.resnet18(weights=None)
    model.load_state_dict(torch.load(weights_file, weights_only=True))
    if freeze:
        for param in model.parameters():
            param.requires_grad = False
    model.fc = torch.nn.Linear(model.fc.in_features, classes)
    return model


def tutorial_epoch(model, loaders, phases, optimizer, scheduler) -> dict:
    """One epoch of the tutorial's ``train_model`` (phases train and/or val), timed per phase."""
    import torch

    criterion = torch.nn.CrossEntropyLoss()
    out = {}
    for phase in phases:
        start = time.perf_counter()
        model.train() if phase == "train" else model.eval()
        running_loss, running_corrects = 0.0, 0
        for inputs, labels in loaders[phase]:
            optimizer.zero_grad()
            with torch.set_grad_enabled(phase == "train"):
                outputs = model(inputs)
                _, preds = torch.max(outputs, 1)
                loss = criterion(outputs, labels)
                if phase == "train":
                    loss.backward()
                    optimizer.step()
            running_loss += loss.item() * inputs.size(0)
            running_corrects += torch.sum(preds == labels.data)
        if phase == "train":
            scheduler.step()
        size = len(loaders[phase].dataset)
        out[phase] = {"seconds": time.perf_counter() - start, "acc": float(running_corrects) / size, "images": size}
    return out


def mltk_run(data: str, weights: Path, runs: Path, mode: str, epochs: int, batch: int, threads: int, workers: int):
    from mltoolkit.core.runs import Run
    from mltoolkit.transfer import Config, train

    cfg = Config(
        data=data, weights=str(weights), mode=mode, epochs=epochs, batch_size=batch, threads=threads, workers=workers
    )
    result = train(cfg, runs_dir=runs)
    return Run(result.run_dir).read_metrics()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="ImageFolder with train/ and val/ (hymenoptera)")
    parser.add_argument("--repeats", type=int, default=3, help="fine-tuning epochs timed per side (median)")
    parser.add_argument("--fe-epochs", type=int, default=3, help="feature-extract epochs per side")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    opts = parser.parse_args()
    if not Path(opts.data, "train").is_dir():
        raise SystemExit(f"no data at {opts.data}: pass --data or set MLTK_HYMENOPTERA")

    import torch
    import torchvision

    from mltoolkit.core.console import set_quiet
    from mltoolkit.core.device import set_threads

    set_quiet(True)
    set_threads(opts.threads)
    scratch = Path(tempfile.mkdtemp(prefix="transfer-bench-"))
    weights = scratch / "resnet18-random.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    classes = len([p for p in Path(opts.data, "train").iterdir() if p.is_dir()])
    print(f"data {opts.data}; resnet18 224px, batch {opts.batch_size}, {opts.threads} threads, {opts.workers} workers")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())

    # 1. fine-tuning throughput, interleaved so that load changes hit both sides alike
    tutorial_rates, mltk_rates = [], []
    loaders = tutorial_loaders(opts.data, opts.batch_size, opts.workers, train_augment=True)
    for repeat in range(opts.repeats):
        model = tutorial_model(weights, classes, freeze=False)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
        phase = tutorial_epoch(model, loaders, ["train"], optimizer, scheduler)["train"]
        tutorial_rates.append(phase["images"] / phase["seconds"])
        record = mltk_run(
            opts.data, weights, scratch / "runs", "finetune", 1, opts.batch_size, opts.threads, opts.workers
        )
        mltk_rates.append(record[0]["train_images_per_s"])
        print(f"  repeat {repeat + 1}: tutorial {tutorial_rates[-1]:.2f} img/s, mltk {mltk_rates[-1]:.2f} img/s")
    tutorial_rate, mltk_rate = statistics.median(tutorial_rates), statistics.median(mltk_rates)
    print(
        f"finetune train throughput (median of {opts.repeats}): tutorial {tutorial_rate:.2f} img/s, "
        f"mltk {mltk_rate:.2f} img/s, ratio {mltk_rate / tutorial_rate:.3f} (target >= 0.95)"
    )

    # 2. feature extraction: the tutorial's fixed feature extractor vs cached features
    model = tutorial_model(weights, classes, freeze=True)
    optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.001, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
    tutorial_epochs = [
        tutorial_epoch(model, loaders, ["train", "val"], optimizer, scheduler) for _ in range(opts.fe_epochs)
    ]
    tutorial_times = [e["train"]["seconds"] + e["val"]["seconds"] for e in tutorial_epochs]
    records = mltk_run(
        opts.data,
        weights,
        scratch / "runs",
        "feature-extract",
        opts.fe_epochs,
        opts.batch_size,
        opts.threads,
        opts.workers,
    )
    later = [r["epoch_time_s"] for r in records[1:]]
    tutorial_epoch_s, mltk_epoch_s = statistics.median(tutorial_times), statistics.median(later)
    print(
        f"feature-extract epoch: tutorial {tutorial_epoch_s:.2f} s (median of {opts.fe_epochs}), mltk first epoch "
        f"{records[0]['epoch_time_s']:.2f} s (extracts features), later epochs {mltk_epoch_s:.4f} s (median of "
        f"{len(later)}); speed-up {tutorial_epoch_s / mltk_epoch_s:.0f}x (target >= 10x)"
    )
    print(
        f"validation accuracy after {opts.fe_epochs} epochs: tutorial {tutorial_epochs[-1]['val']['acc']:.3f}, "
        f"mltk {records[-1]['val_acc']:.3f} (same random frozen backbone: neither is pretrained here)"
    )
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
