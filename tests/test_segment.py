"""`mltk segment` end to end on tiny synthetic data sets made here (both layouts), and its bad inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from mltoolkit.techniques import SEGMENT
from tests.conftest import assert_run_dir, fails, ok

FAST = ["--size", "64x64", "--batch-size", "4", "--threads", "1", "--workers", "0", "--quiet"]


def make_data(root, layout="folders", train=12, val=4):
    from mltoolkit.segment.synthetic import write_shapes

    return write_shapes(root, train=train, val=val, size=64, layout=layout, seed=1)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("segment")
    data = make_data(root / "data")
    # unlabelled pixels in one validation mask: evaluate must skip them
    mask_path = data / "val" / "masks" / "val_0000.png"
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[:8, :8] = 255
    Image.fromarray(mask, "L").save(mask_path)
    return root, data


@pytest.fixture
def trained(mltk, shared):
    """One tiny run (2 epochs), trained by the first test that asks and shared by the evaluate/predict/resume
    tests (its printed result is kept beside it)."""
    root, data = shared
    runs, result_file = root / "runs", root / "train.json"
    if not result_file.exists():
        result = ok(
            mltk("segment", "train", "--data", data, "--epochs", 2, "--runs-dir", runs, "--name", "tiny", *FAST)
        )
        result_file.write_text(json.dumps(result.json()))
    return data, runs, json.loads(result_file.read_text())


def test_train_writes_the_run_directory(trained):
    data, runs, result = trained
    run = runs / SEGMENT.name / "tiny"
    assert result["run_dir"] == str(run)
    assert 0 <= result["best_val_miou"] <= 1
    summary = assert_run_dir(run, SEGMENT.name)
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "plots/curves.png", "plots/val_examples.png"):
        assert (run / name).is_file(), name
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert {"train_loss", "val_loss", "pixel_accuracy", "miou", "lr"} <= set(metrics[0])
    config = json.loads((run / "config.json").read_text())
    assert config["ignore_index"] == 255 and config["bn_momentum"] == 0.1 and config["size"] == "64x64"
    assert summary["status"] == "completed" and summary["headline"]["metric"] == "val_miou"


def test_a_data_folder_whose_name_has_a_space_trains_without_a_name(mltk, tmp_path):
    data = make_data(tmp_path / "my shapes", train=4, val=2)
    result = ok(mltk("segment", "train", data, "--epochs", 1, "--runs-dir", tmp_path / "runs", *FAST)).json()
    assert result["run_dir"] == str(tmp_path / "runs" / SEGMENT.name / "my-shapes-lraspp")


def test_predict_writes_masks_of_the_input_size(mltk, trained, tmp_path):
    data, runs, result = trained
    odd = tmp_path / "odd.jpg"
    Image.new("RGB", (90, 50), (200, 30, 30)).save(odd)
    images = sorted((data / "val" / "images").iterdir())[:2]
    out = tmp_path / "masks"
    records = ok(
        mltk("segment", "predict", result["run_dir"], *images, odd, "--output", out, "--overlay", "--threads", "1")
    ).jsonl()
    assert len(records) == 3
    for record in records:
        source = Image.open(record["image"])
        mask = Image.open(record["mask"])
        assert mask.mode == "P" and mask.size == source.size
        painted, pixels = np.asarray(Image.open(record["overlay"])), np.asarray(source.convert("RGB"))
        background = np.asarray(mask) == 0  # coloured black in classes.json: left as the image has it
        assert painted.shape == pixels.shape and (painted[background] == pixels[background]).all()
        assert abs(sum(record["fractions"].values()) - 1) < 1e-3
        assert set(record["fractions"]) == {"background", "circle", "square", "triangle"}


def test_predict_reads_paths_from_stdin(mltk, trained, tmp_path):
    data, runs, result = trained
    paths = "\n".join(str(p) for p in sorted((data / "val" / "images").iterdir())[:2])
    records = ok(mltk("segment", "predict", result["run_dir"], "-", "-o", tmp_path, "-q", input=paths)).jsonl()
    assert len(records) == 2


def test_predict_skips_an_unreadable_image_with_a_warning_or_strict_exit_3(mltk, trained, tmp_path):
    data, runs, result = trained
    good, broken = next((data / "val" / "images").iterdir()), tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    skipped = ok(mltk("segment", "predict", result["run_dir"], broken, good, "-o", tmp_path / "masks"))
    assert [r["image"] for r in skipped.jsonl()] == [str(good)] and "broken.png" in skipped.stderr
    fails(mltk("segment", "predict", result["run_dir"], good, broken, "-o", tmp_path, "--strict"), 3, "broken.png")
    fails(mltk("segment", "predict", result["run_dir"], broken, "-o", tmp_path), 3, "none of the 1 inputs")


def test_evaluate_matches_a_hand_computed_confusion_matrix(mltk, trained, tmp_path):
    data, runs, result = trained
    report = ok(
        mltk(
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
    ok(mltk("segment", "predict", result["run_dir"], *images, "-o", tmp_path, "--batch-size", "1", "--threads", "1"))
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


def test_predict_and_evaluate_refuse_batch_size_0(mltk, trained, tmp_path):
    data, runs, result = trained
    image = sorted((data / "val" / "images").iterdir())[0]
    out = tmp_path / "masks"
    fails(mltk("segment", "predict", result["run_dir"], image, "-o", out, "--batch-size", 0), 3, "--batch-size")
    assert not out.exists()
    fails(mltk("segment", "evaluate", result["run_dir"], "--batch-size", 0), 3, "--batch-size")


def test_predict_output_that_is_a_file_is_exit_3(mltk, trained, tmp_path):
    data, runs, result = trained
    image = sorted((data / "val" / "images").iterdir())[0]
    taken = tmp_path / "masks.png"
    taken.write_bytes(b"not a folder")
    fails(mltk("segment", "predict", result["run_dir"], image, "-o", taken), 3, "masks.png", "folder")
    fails(mltk("segment", "predict", result["run_dir"], image, "-o", taken / "sub"), 3, "masks.png")
    assert taken.read_bytes() == b"not a folder"


def test_confusion_matrix_by_hand():
    import torch

    from mltoolkit.core.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(3, ignore_index=255)
    matrix.update(torch.tensor([[0, 1, 1], [2, 255, 0]]), torch.tensor([[0, 1, 0], [1, 2, 0]]))
    assert matrix.matrix.tolist() == [[2, 0, 0], [1, 1, 0], [0, 1, 0]]
    metrics = matrix.compute(["a", "b", "c"])
    assert metrics["pixel_accuracy"] == pytest.approx(3 / 5)
    assert metrics["iou"] == pytest.approx({"a": 2 / 3, "b": 1 / 3, "c": 0.0})
    assert metrics["miou"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)


def test_resume_continues_from_last_checkpoint(mltk, trained):
    data, runs, result = trained
    resumed = ok(
        mltk(
            "segment", "train", "--resume", result["run_dir"], "--epochs", 3, "--runs-dir", runs, "--threads", "1", "-q"
        )
    ).json()
    assert resumed["run_dir"] == result["run_dir"] and resumed["epochs"] == 3
    lines = (runs / "segment" / "tiny" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_segnet_layout_is_detected(mltk, tmp_path):
    data = make_data(tmp_path / "camvid_like", layout="segnet", train=8, val=2)
    (data / "classes.json").unlink()
    (data / "classes.txt").write_text("background\ncircle\nsquare\ntriangle\n")
    result = ok(mltk("segment", "train", data, "--epochs", 1, "--runs-dir", tmp_path / "runs", *FAST)).json()
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


def test_image_without_mask_is_exit_3(mltk, broken):
    data, flags = broken
    (data / "train" / "masks" / "train_0003.png").unlink()
    fails(mltk("segment", "train", data, *flags), 3, "train_0003.png", "without a mask")


def test_mask_of_another_size_is_exit_3(mltk, broken):
    data, flags = broken
    Image.new("L", (32, 64)).save(data / "val" / "masks" / "val_0001.png")
    fails(mltk("segment", "train", data, *flags), 3, "val_0001.png", "32x64")


def test_mask_value_not_a_class_is_exit_3(mltk, broken):
    data, flags = broken
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[5, 5] = 38
    Image.fromarray(mask, "L").save(data / "train" / "masks" / "train_0002.png")
    fails(mltk("segment", "train", data, *flags), 3, "train_0002.png", "38", "--ignore-index")


def test_empty_split_is_exit_3(mltk, broken):
    data, flags = broken
    shutil.rmtree(data / "val" / "images")
    (data / "val" / "images").mkdir()
    fails(mltk("segment", "train", data, *flags), 3, "val", "empty")


def test_cuda_asked_without_one_is_exit_4(mltk, broken):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    data, flags = broken
    fails(mltk("segment", "train", data, *flags, "--device", "cuda"), 4, "CUDA")


@pytest.mark.parametrize(
    "option, value",
    [
        ("--ignore-index", "300"),
        ("--patience", "-1"),
        ("--bn-momentum", "5"),
        ("--warmup-epochs", "-1"),
        ("--momentum", "1"),
        ("--eval-every", "0"),
        ("--seed", "-1"),
    ],
)
def test_option_out_of_range_is_exit_3_and_writes_nothing(mltk, broken, tmp_path, option, value):
    data, flags = broken
    fails(mltk("segment", "train", data, *flags, option, value), 3, option, value)
    assert not (tmp_path / "runs").exists()


def test_config_file_value_out_of_range_is_exit_3(mltk, broken, tmp_path):
    data, flags = broken
    (tmp_path / "config.json").write_text(json.dumps({"bn_momentum": 5}))
    fails(mltk("segment", "train", data, *flags, "--config", tmp_path / "config.json"), 3, "--bn-momentum")
    assert not (tmp_path / "runs").exists()


def to_binary(data):
    """The data set as the common binary format: background 0, every shape 255, no classes file."""
    for mask_path in data.glob("*/masks/*.png"):
        mask = np.asarray(Image.open(mask_path))
        Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8), "L").save(mask_path)
    (data / "classes.json").unlink()
    return data


def test_binary_0_255_masks_are_two_classes(mltk, broken, tmp_path):
    data, flags = broken
    trained = ok(mltk("segment", "train", to_binary(data), *flags))
    assert "0 and 255" in trained.stderr and "ignore index 255" in trained.stderr
    run = trained.json()["run_dir"]
    report = ok(mltk("segment", "evaluate", run, "--format", "json", "--threads", "1")).json()
    assert report["classes"] == ["background", "foreground"]
    assert sum(report["confusion_matrix"][1]) > 0  # the foreground is scored, not ignored
    image = sorted((data / "val" / "images").iterdir())[0]
    (record,) = ok(mltk("segment", "predict", run, image, "-o", tmp_path / "masks", "--threads", "1")).jsonl()
    assert set(record["fractions"]) == {"background", "foreground"}


def test_binary_masks_with_two_named_classes_or_another_ignore_index(broken):
    from mltoolkit.segment.config import SegmentConfig
    from mltoolkit.segment.data import find_layout, list_pairs
    from mltoolkit.segment.training import prepare_classes

    data, flags = broken
    layout = find_layout(to_binary(data))
    pairs = list_pairs(layout, "train")
    classes, ignore = prepare_classes(layout, SegmentConfig(classes="sky,cloud"), pairs, 1)
    assert (classes.names, classes.values, ignore) == (["sky", "cloud"], [0, 255], 255)  # not mIoU 1.0 on sky alone
    classes, ignore = prepare_classes(layout, SegmentConfig(ignore_index=254), pairs, 1)
    assert (len(classes), ignore) == (2, 254)  # not 256 inferred classes


def test_named_class_without_training_pixels_is_exit_3(mltk, broken, tmp_path):
    data, flags = broken
    five = "background,circle,square,triangle,star"
    fails(mltk("segment", "train", data, *flags, "--classes", five), 3, "star (4)", "ignore index 255")
    fails(mltk("segment", "train", to_binary(data), *flags, "--classes", "a,b,c"), 3, "b (1), c (2)", "255")
    assert not (tmp_path / "runs").exists()


def test_mostly_ignored_training_pixels_warn(mltk, broken):
    data, flags = broken
    for mask_path in (data / "train" / "masks").iterdir():  # each pair widened 3x, the new part unlabelled
        image_path = data / "train" / "images" / mask_path.name
        image, mask = Image.open(image_path), Image.open(mask_path)
        wide_image, wide_mask = Image.new(image.mode, (192, 64)), Image.new("L", (192, 64), 255)
        wide_image.paste(image)
        wide_mask.paste(mask)
        wide_image.save(image_path)
        wide_mask.save(mask_path)
    warned = ok(mltk("segment", "train", data, *flags))
    assert "67% of the training pixels are the ignore index 255" in warned.stderr


def test_pair_dataset_pickles_for_spawned_workers(tmp_path):
    import pickle

    from mltoolkit.segment.data import PairDataset, find_layout, list_pairs, load_split, read_classes_file

    data = make_data(tmp_path / "data", train=2, val=1)
    classes = read_classes_file(data / "classes.json")
    split = load_split(list_pairs(find_layout(data), "train"), classes, len(classes), 255)
    dataset = PairDataset(split, classes, (32, 32), (0.5,) * 3, (0.25,) * 3, 255, train=True)
    image, mask = pickle.loads(pickle.dumps(dataset))[1]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32)


def test_bad_options_are_one_line_errors(mltk, tmp_path, broken):
    data, flags = broken
    fails(mltk("segment", "train", tmp_path / "nothing", *flags), 3, "nothing")
    fails(mltk("segment", "train", data, *flags, "--model", "unet"), 3, "unet")
    fails(mltk("segment", "train", data, *flags, "--size", "big"), 3, "--size")
    fails(mltk("segment", "train", data, *flags, "--weights-backbone", "missing.pth"), 3, "missing.pth")
    fails(mltk("segment", "evaluate", "nope", "--runs-dir", tmp_path), 3, "nope")
    binary = tmp_path / "classes.txt"
    binary.write_bytes(b"\xff\xfe\x00 not text")  # was a UnicodeDecodeError traceback, exit 1
    fails(mltk("segment", "train", data, *flags, "--classes", binary), 3, "classes.txt", "not a UTF-8 text file")


def test_time_budget_stops_on_time(mltk, broken):
    data, flags = broken
    result = ok(mltk("segment", "train", data, *flags, "--epochs", "50", "--time-budget", "0.05")).json()
    assert 1 <= result["epochs"] < 50  # 3 s: the plan shrinks to what fits, and the run still completes
    assert result["best_val_miou"] is not None


def test_weights_from_local_files_and_failed_download(mltk, broken, tmp_path, monkeypatch):
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
    fails(mltk("segment", "train", data, *flags, "--weights-backbone", "DEFAULT"), 4, "--weights-backbone")


def test_torchrun_two_processes_write_one_run(mltk, broken, tmp_path):
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
    report = ok(mltk("segment", "evaluate", result["run_dir"], "--format", "json", "--threads", "1")).json()
    assert report["images"] == 5
    assert report["miou"] == pytest.approx(result["best_val_miou"])  # 64x64 data trained at 64x64: same pixels


def test_time_budget_keeps_room_for_the_first_validation():
    from mltoolkit.core.engine import validation_time

    assert validation_time(None, step_time=1.0, batches=30) >= 15  # 30 batches after 1 s steps: not 0 s
    assert validation_time(4.0, step_time=1.0, batches=30) == 4.0  # measured: as measured
