"""`mltk segment` end to end on tiny synthetic data sets made here (both layouts), and its bad inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import CliResult, fails, ok

FAST = ["--size", "64x64", "--batch-size", "4", "--threads", "1", "--workers", "0", "--quiet"]


def invoke(*arguments) -> CliResult:
    from mltoolkit.cli import app

    result = CliRunner().invoke(app, [str(a) for a in arguments], catch_exceptions=True)
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return CliResult(result.exit_code, result.stdout, result.stderr, exception)


def make_data(root, layout="folders", train=12, val=4):
    from mltoolkit.segment.synthetic import write_shapes

    return write_shapes(root, train=train, val=val, size=64, layout=layout, seed=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run (2 epochs), shared by the evaluate/predict/resume tests."""
    root = tmp_path_factory.mktemp("segment")
    data = make_data(root / "data")
    # unlabelled pixels in one validation mask: evaluate must skip them
    mask_path = data / "val" / "masks" / "val_0000.png"
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[:8, :8] = 255
    Image.fromarray(mask, "L").save(mask_path)
    runs = root / "runs"
    result = ok(invoke("segment", "train", "--data", data, "--epochs", 2, "--runs-dir", runs, "--name", "tiny", *FAST))
    return data, runs, result.json()


def test_train_writes_the_run_directory(trained):
    data, runs, result = trained
    run = runs / "segment" / "tiny"
    assert result["run_dir"] == str(run)
    assert 0 <= result["best_val_miou"] <= 1
    for name in (
        "config.json",
        "env.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "plots/curves.png",
        "plots/val_examples.png",
    ):
        assert (run / name).is_file(), name
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert {"train_loss", "val_loss", "pixel_accuracy", "miou", "lr"} <= set(metrics[0])
    config = json.loads((run / "config.json").read_text())
    assert config["ignore_index"] == 255 and config["bn_momentum"] == 0.1 and config["size"] == "64x64"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["headline"]["metric"] == "val_miou"


def test_predict_writes_masks_of_the_input_size(trained, tmp_path):
    data, runs, result = trained
    odd = tmp_path / "odd.jpg"
    Image.new("RGB", (90, 50), (200, 30, 30)).save(odd)
    images = sorted((data / "val" / "images").iterdir())[:2]
    out = tmp_path / "masks"
    records = ok(
        invoke("segment", "predict", result["run_dir"], *images, odd, "--output", out, "--overlay", "--threads", "1")
    ).jsonl()
    assert len(records) == 3
    for record in records:
        source = Image.open(record["image"])
        mask = Image.open(record["mask"])
        assert mask.mode == "P" and mask.size == source.size
        assert Image.open(record["overlay"]).size == source.size
        assert abs(sum(record["fractions"].values()) - 1) < 1e-3
        assert set(record["fractions"]) == {"background", "circle", "square", "triangle"}


def test_predict_reads_paths_from_stdin(trained, tmp_path):
    from mltoolkit.cli import app

    data, runs, result = trained
    paths = "\n".join(str(p) for p in sorted((data / "val" / "images").iterdir())[:2])
    output = CliRunner().invoke(
        app, ["segment", "predict", result["run_dir"], "-", "-o", str(tmp_path), "-q"], input=paths
    )
    assert output.exit_code == 0, output.stderr
    assert len(output.stdout.strip().splitlines()) == 2


def test_evaluate_matches_a_hand_computed_confusion_matrix(trained, tmp_path):
    data, runs, result = trained
    report = ok(
        invoke(
            "segment",
            "evaluate",
            result["run_dir"],
            "--data",
            data,
            "--format",
            "json",
            "--batch-size",
            "1",
            "--threads",
            "1",
        )
    ).json()
    images = sorted((data / "val" / "images").iterdir())
    ok(invoke("segment", "predict", result["run_dir"], *images, "-o", tmp_path, "--batch-size", "1", "--threads", "1"))
    expected = np.zeros((4, 4), dtype=np.int64)
    for image in images:
        truth = np.asarray(Image.open(data / "val" / "masks" / image.name)).astype(int)
        predicted = np.asarray(Image.open(tmp_path / f"{image.stem}.png")).astype(int)
        keep = truth != 255
        np.add.at(expected, (truth[keep], predicted[keep]), 1)
    assert expected.sum() == 4 * 64 * 64 - 64  # the 8x8 unlabelled corner is not counted
    assert np.array_equal(np.array(report["confusion_matrix"]), expected)
    assert report["pixel_accuracy"] == pytest.approx(np.trace(expected) / expected.sum())
    union = expected.sum(0) + expected.sum(1) - np.diag(expected)
    ious = [np.diag(expected)[i] / union[i] for i in range(4) if union[i] > 0]
    assert report["miou"] == pytest.approx(np.mean(ious))
    assert (runs / "segment" / "tiny" / "eval.json").is_file()


def test_confusion_matrix_by_hand():
    import torch

    from mltoolkit.segment.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(3, ignore_index=255)
    matrix.update(torch.tensor([[0, 1, 1], [2, 255, 0]]), torch.tensor([[0, 1, 0], [1, 2, 0]]))
    assert matrix.matrix.tolist() == [[2, 0, 0], [1, 1, 0], [0, 1, 0]]
    metrics = matrix.compute(["a", "b", "c"])
    assert metrics["pixel_accuracy"] == pytest.approx(3 / 5)
    assert metrics["iou"] == pytest.approx({"a": 2 / 3, "b": 1 / 3, "c": 0.0})
    assert metrics["miou"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)


def test_resume_continues_from_last_checkpoint(trained):
    data, runs, result = trained
    resumed = ok(
        invoke(
            "segment", "train", "--resume", result["run_dir"], "--epochs", 3, "--runs-dir", runs, "--threads", "1", "-q"
        )
    ).json()
    assert resumed["run_dir"] == result["run_dir"] and resumed["epochs"] == 3
    lines = (runs / "segment" / "tiny" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_segnet_layout_is_detected(tmp_path):
    data = make_data(tmp_path / "camvid_like", layout="segnet", train=8, val=2)
    (data / "classes.json").unlink()
    (data / "classes.txt").write_text("background\ncircle\nsquare\ntriangle\n")
    result = ok(invoke("segment", "train", data, "--epochs", 1, "--runs-dir", tmp_path / "runs", *FAST)).json()
    config = json.loads((tmp_path / "runs" / "segment" / "camvid_like-lraspp" / "config.json").read_text())
    assert config["ignore_index"] == 4  # SegNet convention: one past the last class marks unlabelled pixels
    assert result["epochs"] == 1


def test_palette_and_rgb_masks_are_converted(tmp_path):
    from mltoolkit.segment.data import read_classes_file, read_mask
    from mltoolkit.segment.visual import palette_image

    classes_file = tmp_path / "classes.json"
    classes_file.write_text(
        json.dumps(
            [
                {"name": "bg", "color": [0, 0, 0]},
                {"name": "road", "color": [128, 64, 128]},
                {"name": "void", "color": [255, 255, 255], "ignore": True},
            ]
        )
    )
    classes = read_classes_file(classes_file)
    indices = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    palette_image(indices, classes.colors).save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png", classes).tolist() == indices.tolist()
    rgb = np.array([[[0, 0, 0], [128, 64, 128]], [[255, 255, 255], [0, 0, 0]]], dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    assert read_mask(tmp_path / "rgb.png", classes, 255).tolist() == [[0, 1], [255, 0]]
    rgb[0, 0] = [1, 2, 3]
    Image.fromarray(rgb, "RGB").save(tmp_path / "bad.png")
    from mltoolkit.core.errors import DataError

    with pytest.raises(DataError, match=r"bad.png: colour \(1, 2, 3\)"):
        read_mask(tmp_path / "bad.png", classes, 255)


@pytest.fixture
def broken(tmp_path):
    data = make_data(tmp_path / "data", train=8, val=2)
    return data, ["--epochs", "1", "--runs-dir", tmp_path / "runs", *FAST]


def test_image_without_mask_is_exit_3(broken):
    data, flags = broken
    (data / "train" / "masks" / "train_0003.png").unlink()
    fails(invoke("segment", "train", data, *flags), 3, "train_0003.png", "without a mask")


def test_mask_of_another_size_is_exit_3(broken):
    data, flags = broken
    Image.new("L", (32, 64)).save(data / "val" / "masks" / "val_0001.png")
    fails(invoke("segment", "train", data, *flags), 3, "val_0001.png", "32x64")


def test_mask_value_not_a_class_is_exit_3(broken):
    data, flags = broken
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[5, 5] = 38
    Image.fromarray(mask, "L").save(data / "train" / "masks" / "train_0002.png")
    fails(invoke("segment", "train", data, *flags), 3, "train_0002.png", "38", "--ignore-index")


def test_empty_split_is_exit_3(broken):
    data, flags = broken
    shutil.rmtree(data / "val" / "images")
    (data / "val" / "images").mkdir()
    fails(invoke("segment", "train", data, *flags), 3, "val", "empty")


def test_bad_options_are_one_line_errors(tmp_path, broken):
    data, flags = broken
    fails(invoke("segment", "train", tmp_path / "nothing", *flags), 3, "nothing")
    fails(invoke("segment", "train", data, *flags, "--model", "unet"), 3, "unet")
    fails(invoke("segment", "train", data, *flags, "--size", "big"), 3, "--size")
    fails(invoke("segment", "train", data, *flags, "--weights-backbone", "missing.pth"), 3, "missing.pth")
    fails(invoke("segment", "train", data, *flags, "--device", "cuda"), 4, "CUDA")
    fails(invoke("segment", "evaluate", "nope", "--runs-dir", tmp_path), 3, "nope")


def test_time_budget_stops_on_time(broken):
    data, flags = broken
    result = ok(invoke("segment", "train", data, *flags, "--epochs", "50", "--time-budget", "0.05")).json()
    assert 1 <= result["epochs"] < 50  # 3 s: the plan shrinks to what fits, and the run still completes
    assert result["best_val_miou"] is not None


def test_weights_from_local_files_and_failed_download(broken, tmp_path, monkeypatch):
    import urllib.error

    import torch
    import torchvision.models._api
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    from mltoolkit.segment.config import SegmentConfig
    from mltoolkit.segment.model import build_model

    torch.manual_seed(0)
    backbone_file = tmp_path / "mobilenet.pth"
    torch.save(mobilenet_v3_large(weights=None).state_dict(), backbone_file)
    model = build_model(SegmentConfig(weights_backbone=str(backbone_file)), num_classes=4)
    expected = torch.load(backbone_file)["features.0.0.weight"]
    assert torch.equal(model.backbone["0"][0].weight, expected)  # features.N -> backbone N

    whole_file = tmp_path / "lraspp21.pth"  # another class count: the class head is left as built
    torch.save(lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21).state_dict(), whole_file)
    model = build_model(SegmentConfig(weights=str(whole_file)), num_classes=4)
    assert torch.equal(model.backbone["0"][0].weight, torch.load(whole_file)["backbone.0.0.weight"])
    assert model.classifier.low_classifier.out_channels == 4

    def offline(url, *args, **kwargs):  # what torchvision meets without internet, made certain anywhere
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    data, flags = broken
    fails(invoke("segment", "train", data, *flags, "--weights-backbone", "DEFAULT"), 4, "--weights-backbone")


def test_torchrun_two_processes_write_one_run(broken, tmp_path):
    """DESIGN.md's scaling path: `torchrun -m mltoolkit segment train` (gloo on CPU). Rank 0 alone writes and
    prints; the validation sums cover the whole split, so evaluate on one process agrees with training."""
    import os
    import subprocess
    import sys

    data = make_data(tmp_path / "data", train=12, val=5)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "mltoolkit", "segment", "train", data, *FAST, "--batch-size", "2", "--epochs", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(c) for c in command + ["--runs-dir", tmp_path / "runs"]], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert [p.name for p in (tmp_path / "runs" / "segment").iterdir()] == [tmp_path.joinpath(result["run_dir"]).name]
    records = [json.loads(line) for line in (tmp_path / result["run_dir"]).joinpath("metrics.jsonl").open()]
    assert [r["step"] for r in records] == [3, 6]  # 12 images / 2 processes / batch 2 = 3 steps an epoch
    report = ok(invoke("segment", "evaluate", result["run_dir"], "--format", "json", "--threads", "1")).json()
    assert report["images"] == 5
    assert report["miou"] == pytest.approx(result["best_val_miou"])  # 64x64 data trained at 64x64: same pixels
