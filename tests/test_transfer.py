"""`mltk transfer`: end-to-end CLI runs on tiny synthetic shape folders (made here, 32 px, 1-2 epochs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import args, fails, ok

FAST = ["--weights", "none", "--model", "mobilenet_v3_small", "--image-size", "32", "--threads", "1", "--workers", "0"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    from mltoolkit.transfer.synthetic import make_shapes_folder

    return make_shapes_folder(tmp_path_factory.mktemp("shapes"), train=12, val=6, size=32)


@pytest.fixture
def copy(shapes, tmp_path) -> Path:
    return Path(shutil.copytree(shapes, tmp_path / "data"))


def test_finetune_evaluate_predict(mltk, shapes, tmp_path):
    runs = tmp_path / "runs"
    out = ok(mltk("transfer", "finetune", "--data", shapes, *FAST, *args(epochs=1, batch_size=4, runs_dir=runs))).json()
    run = Path(out["run_dir"])
    assert 0 <= out["best_val_acc"] <= 1 and out["epochs_run"] == 1
    for name in ("config.json", "env.json", "summary.json", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (run / name).is_file(), name
    assert (run / "plots" / "curves.png").stat().st_size > 1000
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "train_images_per_s", "epoch_time_s"} <= set(record)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"

    result = ok(mltk("transfer", "evaluate", run, "--format", "json", "--errors", "--workers", "0")).json()
    assert result["images"] == 6 and set(result["per_class"]) == {"circle", "square", "triangle"}
    assert result["top3_accuracy"] == 1.0 and 0 <= result["accuracy"] <= 1
    assert sum(map(sum, result["confusion"]["matrix"])) == 6
    assert len(result["errors"]) == round(6 * (1 - result["accuracy"]))
    assert json.loads((run / "eval.json").read_text())["accuracy"] == result["accuracy"]
    assert (run / "plots" / "confusion.png").is_file()
    other = ok(mltk("transfer", "evaluate", run, "--data", shapes / "train", "--format", "json", "--workers", "0"))
    assert other.json()["images"] == 12

    images = sorted(str(p) for p in (shapes / "val").rglob("*.png"))
    csv = ok(mltk("transfer", "predict", run, "-", input="\n".join(images) + "\n")).stdout.splitlines()
    assert csv[0] == "path,label,probability" and len(csv) == 7
    assert {line.split(",")[1] for line in csv[1:]} <= {"circle", "square", "triangle"}
    records = ok(mltk("transfer", "predict", run / "checkpoints" / "best.pt", shapes / "val", "--top-k", "2")).jsonl()
    assert len(records) == 6 and len(records[0]["top_k"]) == 2
    assert records[0]["top_k"][0]["probability"] >= records[0]["top_k"][1]["probability"]


def test_feature_extract_keeps_the_local_backbone_and_caches(mltk, shapes, tmp_path):
    import torch
    import torchvision

    from mltoolkit.core.checkpoint import load_checkpoint

    torch.manual_seed(1)
    pretrained = torchvision.models.mobilenet_v3_small(num_classes=1000).state_dict()
    weights = tmp_path / "backbone.pth"
    torch.save(pretrained, weights)
    options = [*FAST[2:], "--weights", weights, "--mode", "feature-extract"]
    out = ok(mltk("transfer", "train", "--data", shapes, *options, *args(epochs=3, runs_dir=tmp_path / "r"))).json()
    state = load_checkpoint(Path(out["run_dir"]) / "checkpoints" / "best.pt", "transfer")["state"]["model"]
    assert torch.equal(state["features.0.0.weight"], pretrained["features.0.0.weight"])  # frozen, loaded
    assert state["classifier.3.weight"].shape == (3, 1024)  # new head for the 3 classes
    records = [json.loads(line) for line in (Path(out["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 3 and records[2]["epoch_time_s"] < records[0]["epoch_time_s"]  # cached after epoch 1


@pytest.mark.parametrize("schedule", ["step", "onecycle"])  # onecycle keeps its length in its state
def test_resume_continues_after_the_last_epoch(mltk, shapes, tmp_path, schedule):
    runs = tmp_path / "runs"
    options = [*FAST, *args(epochs=1, batch_size=6, runs_dir=runs), "--schedule", schedule]
    out = ok(mltk("transfer", "finetune", "--data", shapes, *options))
    run = out.json()["run_dir"]
    again = ok(mltk("transfer", "finetune", "--resume", run, "--epochs", "2", "--runs-dir", runs)).json()
    assert again["run_dir"] == run and again["epochs_run"] == 2
    epochs = [json.loads(line)["epoch"] for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


def test_single_tree_is_split_by_val_fraction(mltk, copy, tmp_path):
    shutil.rmtree(copy / "val")
    out = ok(
        mltk(
            "transfer", "train", "--data", copy / "train", *FAST, *args(val_fraction=0.25, epochs=1, runs_dir=tmp_path)
        )
    )
    result = ok(mltk("transfer", "evaluate", out.json()["run_dir"], "--format", "json", "--workers", "0")).json()
    assert result["images"] == 3  # one of the four images of each class held out


def test_corrupt_image_is_skipped_or_strict_exit_3(mltk, copy, tmp_path):
    bad = copy / "train" / "circle" / "broken.png"
    bad.write_bytes(b"not an image at all")
    result = ok(mltk("transfer", "finetune", "--data", copy, *FAST, "--epochs", "1", "--runs-dir", tmp_path))
    assert "broken.png" in result.stderr and "skipped" in result.stderr
    fails(mltk("transfer", "finetune", "--data", copy, *FAST, "--strict", "--runs-dir", tmp_path), 3, "broken.png")


def test_truncated_image_found_while_decoding_is_skipped(mltk, copy, tmp_path):
    victim = next((copy / "train" / "square").glob("*.png"))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    result = ok(mltk("transfer", "finetune", "--data", copy, *FAST, "--epochs", "1", "--runs-dir", tmp_path))
    assert victim.name in result.stderr


def test_bad_folders_are_exit_3(mltk, copy, tmp_path):
    shutil.rmtree(copy / "val" / "square")
    fails(mltk("transfer", "finetune", "--data", copy, *FAST, "--runs-dir", tmp_path), 3, "square")
    (copy / "val" / "square").mkdir()
    fails(mltk("transfer", "finetune", "--data", copy, *FAST, "--runs-dir", tmp_path), 3, "holds no images")
    fails(mltk("transfer", "finetune", "--data", tmp_path / "nowhere", *FAST), 3, "nowhere")
    (copy / "val" / "square" / "a.png").write_bytes((copy / "train" / "square" / "00001.png").read_bytes())
    fails(mltk("transfer", "finetune", "--data", copy, *FAST, "--model", "resnet9000"), 3, "transfer models")


def test_weights_errors(mltk, shapes, tmp_path, monkeypatch):
    import urllib.error

    import torchvision.models._api

    def offline(url, *args, **kwargs):  # what torchvision meets without internet, made certain anywhere
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    options = ["--data", shapes, "--model", "mobilenet_v3_small", "--runs-dir", tmp_path / "runs"]
    fails(mltk("transfer", "finetune", *options), 4, "could not download", "--weights PATH")
    assert not (tmp_path / "runs" / "transfer").exists() or not any((tmp_path / "runs" / "transfer").iterdir())
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    fails(mltk("transfer", "finetune", *options, "--weights", junk), 3, "junk.pth")
    fails(mltk("transfer", "finetune", *options, "--weights", "IMAGENET9K"), 3, "IMAGENET1K_V1")


def test_models_lists_classifiers(mltk):
    rows = ok(mltk("transfer", "models", "--format", "json")).json()
    names = {row["model"] for row in rows}
    assert {"resnet18", "mobilenet_v3_small", "vit_b_16"} <= names and "fcn_resnet50" not in names


@pytest.fixture(scope="module")
def scratch_run(shapes, tmp_path_factory) -> Path:
    """One epoch from random weights at the defaults --weights none brings (no --image-size given)."""
    from mltoolkit.transfer import Config, train

    config = Config(data=str(shapes), weights="none", model="mobilenet_v3_small", epochs=1, threads=1, workers=0)
    return train(config, runs_dir=tmp_path_factory.mktemp("runs")).run_dir


def test_from_scratch_defaults_to_the_from_scratch_recipe_at_the_images_size(scratch_run):
    from mltoolkit.core.checkpoint import load_checkpoint

    config = json.loads((scratch_run / "config.json").read_text())
    assert (config["optimizer"], config["lr"], config["schedule"]) == ("adamw", 0.002, "onecycle")
    pre = load_checkpoint(scratch_run / "checkpoints" / "best.pt", "transfer")["state"]["preprocessing"]
    assert (pre["resize_size"], pre["crop_size"]) == (32, 28)  # 32 px images are not upscaled to 224


def test_pretrained_defaults_and_typed_flags_win():
    from mltoolkit.core.config import resolve_config
    from mltoolkit.transfer import Config
    from mltoolkit.transfer.data import preprocessing_for

    pretrained = resolve_config(Config, {"data": "d"})
    assert (pretrained.optimizer, pretrained.lr, pretrained.schedule, pretrained.resolved_augment()) == (
        "sgd", 0.001, "step", "basic",
    )  # fmt: skip
    scratch = resolve_config(Config, {"data": "d", "weights": "none", "optimizer": "sgd"})
    assert (scratch.optimizer, scratch.lr, scratch.resolved_augment()) == ("sgd", 0.002, "none")
    assert preprocessing_for("resnet18", None, None, native_size=500).crop_size == 224  # never past the recipe's
    assert preprocessing_for("inception_v3", None, None, native_size=32).crop_size == 75  # the model's least


def test_help_says_which_defaults_apply_when(mltk):
    text = " ".join(ok(mltk("transfer", "train", "--help")).stdout.replace("│", " ").split())
    assert "adamw with --weights none" in text and "onecycle with --weights none" in text
    assert "> 0" in text  # --lr's range


@pytest.mark.parametrize(
    "option",
    [
        ["--lr", "0"], ["--momentum", "1"], ["--gamma", "0"], ["--label-smoothing", "1"], ["--seed", "-1"],
        ["--val-fraction", "1"], ["--workers", "-1"], ["--image-size", "8"], ["--epochs", "0"],
        ["--model", "inception_v3", "--image-size", "32"],
    ],
)  # fmt: skip
def test_out_of_range_options_are_exit_3_before_anything_is_written(mltk, shapes, tmp_path, option):
    command = ["transfer", "train", "--data", shapes, *FAST, "--epochs", "1", *option, "--runs-dir", tmp_path]
    fails(mltk(*command), 3, option[-2])  # FAST, so that a value taken trains for seconds, not hours
    assert not any(tmp_path.iterdir())


def test_one_class_is_exit_3(mltk, copy, tmp_path):
    for extra in ("square", "triangle"):
        shutil.rmtree(copy / "train" / extra)
        shutil.rmtree(copy / "val" / extra)
    fails(mltk("transfer", "train", "--data", copy, *FAST, "--runs-dir", tmp_path / "runs"), 3, "at least 2 classes")
    assert not (tmp_path / "runs").exists()


def test_download_notice_goes_to_stderr(mltk, shapes, tmp_path, monkeypatch):
    import urllib.error

    import torch.hub

    def offline(url, *args, **kwargs):  # torch.hub has already announced the download on stdout
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # nothing cached: torch.hub downloads
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    options = ["--data", shapes, "--model", "mobilenet_v3_small", "--runs-dir", tmp_path / "runs"]
    result = fails(mltk("transfer", "finetune", *options), 4, "could not download")
    assert result.stdout == "" and "Downloading" in result.stderr


def test_evaluate_and_predict_refuse_counts_below_1(mltk, scratch_run):
    fails(mltk("transfer", "evaluate", scratch_run, "--top-k", "-1"), 3, "--top-k")
    fails(mltk("transfer", "evaluate", scratch_run, "--batch-size", "0"), 3, "--batch-size")
    fails(mltk("transfer", "predict", scratch_run, "-", "--top-k", "0", input="a.png\n"), 3, "--top-k")


def test_predict_missing_file_warns_and_empty_input_is_usage_error(mltk, shapes, scratch_run, tmp_path):
    good = next((shapes / "val").rglob("*.png"))
    result = ok(mltk("transfer", "predict", scratch_run, good, tmp_path / "absent.png"))
    assert len(result.stdout.splitlines()) == 2 and "absent.png" in result.stderr
    fails(mltk("transfer", "predict", scratch_run, tmp_path / "absent.png", "--strict"), 3, "absent.png")
    assert mltk("transfer", "predict", scratch_run).exit_code == 2


def test_predict_with_nothing_classified_is_one_error(mltk, shapes, scratch_run, tmp_path):
    garbage = "\n".join(f"{i} {'x' * 300} \x00 not a path" for i in range(20)) + "\n"
    result = fails(mltk("transfer", "predict", scratch_run, "-", input=garbage), 3, "none of the 20 inputs")
    assert result.stdout == "" and "skipped" not in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(mltk("transfer", "predict", scratch_run, empty, "-o", tmp_path / "out.csv"), 3, "no images in")
    assert not (tmp_path / "out.csv").exists()


def test_predict_output_that_is_a_directory_is_exit_3(mltk, shapes, scratch_run, tmp_path):
    fails(mltk("transfer", "predict", scratch_run, shapes / "val", "-o", tmp_path), 3, "is a directory")
    assert not any(tmp_path.iterdir())


def test_recipe_options_run(mltk, shapes, tmp_path):
    recipe = ["--balance", "--augment", "strong", "--schedule", "cosine", "--warmup-epochs", "0.5"]
    recipe += ["--label-smoothing", "0.1", "--optimizer", "adamw", "--patience", "1"]
    out = ok(mltk("transfer", "train", "--data", shapes, *FAST, *recipe, *args(epochs=3, runs_dir=tmp_path))).json()
    assert 1 <= out["epochs_run"] <= 3
    views = ["--mode", "feature-extract", "--augment", "basic", "--views", "2", "--balance"]
    out = ok(mltk("transfer", "train", "--data", shapes, *FAST, *views, *args(epochs=2, runs_dir=tmp_path))).json()
    assert out["epochs_run"] == 2


def test_interrupt_saves_state_and_resume_finishes(mltk, shapes, tmp_path, monkeypatch):
    from mltoolkit.core import engine

    original = engine.train_one_epoch

    def interrupted_in_epoch_2(*args, title, **kwargs):
        if title.startswith("epoch 2/"):
            raise KeyboardInterrupt
        return original(*args, title=title, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", interrupted_in_epoch_2)
    runs = tmp_path / "runs"
    fails(mltk("transfer", "train", "--data", shapes, *FAST, *args(epochs=2, runs_dir=runs, name="cut")), 130)
    run = runs / "transfer" / "cut"
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(engine, "train_one_epoch", original)
    out = ok(mltk("transfer", "train", "--resume", "cut", "--runs-dir", runs)).json()
    assert out["epochs_run"] == 2 and json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_torchrun_two_processes_write_one_run(mltk, shapes, tmp_path):
    """``torchrun --nproc_per_node 2``: DDP over gloo, rank 0 alone writes the run and prints the result."""
    import os
    import subprocess
    import sys

    from mltoolkit.core.checkpoint import load_checkpoint

    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "mltoolkit", "transfer", "finetune", "--data", str(shapes), "--model", "resnet18"]
    command += ["--image-size", "32", "--weights", "none", "--threads", "1", "--workers", "0", "--quiet"]
    command += [*args(epochs=2, batch_size=3, runs_dir=runs)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env={**env, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [line for line in done.stdout.splitlines() if line.strip()]  # one result line, from rank 0
    out = json.loads(line)
    (run,) = list((runs / "transfer").iterdir())
    assert out["run_dir"] == str(run) and out["epochs_run"] == 2
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    assert json.loads((run / "summary.json").read_text())["processes"] == 2
    state = load_checkpoint(run / "checkpoints" / "best.pt", "transfer")["state"]["model"]
    assert "fc.weight" in state and not any(key.startswith("module.") for key in state)  # unwrapped from DDP
    result = ok(mltk("transfer", "evaluate", run, "--format", "json", "--workers", "0")).json()
    assert result["images"] == 6


def test_torchrun_refuses_balance_and_feature_extract(mltk, shapes, tmp_path, monkeypatch):
    for key, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(key, value)  # what torchrun sets; refused before joining any process group
    options = ["--data", shapes, *FAST, "--runs-dir", tmp_path]
    fails(mltk("transfer", "finetune", *options, "--balance"), 2, "--balance", "torchrun")
    fails(mltk("transfer", "finetune", *options, "--mode", "feature-extract"), 2, "one process", "torchrun")
    assert not (tmp_path / "transfer").exists()


def test_time_budget_and_eval_every(mltk, shapes, tmp_path):
    budget = ok(mltk("transfer", "train", "--data", shapes, *FAST, "--time-budget", "0.05", "--runs-dir", tmp_path))
    assert budget.json()["epochs_run"] >= 1 and budget.json()["best_val_acc"] is not None  # 3 s: what fits, then done
    every_2 = ok(
        mltk("transfer", "train", "--data", shapes, *FAST, "--eval-every", "2", *args(epochs=3, runs_dir=tmp_path))
    )
    rows = [json.loads(line) for line in (Path(every_2.json()["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows if row.get("val_acc") is not None] == [2, 3]


def test_a_checkpoint_whose_weights_do_not_fit_its_model_is_exit_3(mltk, scratch_run, tmp_path):
    from mltoolkit.core.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(scratch_run / "checkpoints" / "best.pt")
    payload["state"]["model_name"] = "resnet18"  # the weights are mobilenet_v3_small's
    forged = save_checkpoint(tmp_path / "forged.pt", **{k: payload[k] for k in ("technique", "config", "state")})
    fails(mltk("transfer", "predict", forged, scratch_run / "plots" / "curves.png"), 3, "forged.pt", "do not fit")
