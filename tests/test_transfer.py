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


def test_predict_missing_file_warns_and_empty_input_is_usage_error(mltk, shapes, tmp_path):
    out = ok(mltk("transfer", "train", "--data", shapes, *FAST, "--epochs", "1", "--runs-dir", tmp_path)).json()
    good = next((shapes / "val").rglob("*.png"))
    result = ok(mltk("transfer", "predict", out["run_dir"], good, tmp_path / "absent.png"))
    assert len(result.stdout.splitlines()) == 2 and "absent.png" in result.stderr
    fails(mltk("transfer", "predict", out["run_dir"], tmp_path / "absent.png", "--strict"), 3, "absent.png")
    assert mltk("transfer", "predict", out["run_dir"]).exit_code == 2


def test_recipe_options_run(mltk, shapes, tmp_path):
    recipe = ["--balance", "--augment", "strong", "--schedule", "cosine", "--warmup-epochs", "0.5"]
    recipe += ["--label-smoothing", "0.1", "--optimizer", "adamw", "--patience", "1"]
    out = ok(mltk("transfer", "train", "--data", shapes, *FAST, *recipe, *args(epochs=3, runs_dir=tmp_path))).json()
    assert 1 <= out["epochs_run"] <= 3
    views = ["--mode", "feature-extract", "--augment", "basic", "--views", "2", "--balance"]
    out = ok(mltk("transfer", "train", "--data", shapes, *FAST, *views, *args(epochs=2, runs_dir=tmp_path))).json()
    assert out["epochs_run"] == 2


def test_interrupt_saves_state_and_resume_finishes(mltk, shapes, tmp_path, monkeypatch):
    from mltoolkit.transfer import trainer

    original = trainer.FinetuneLearner.train_epoch

    def interrupted_in_epoch_2(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(trainer.FinetuneLearner, "train_epoch", interrupted_in_epoch_2)
    runs = tmp_path / "runs"
    fails(mltk("transfer", "train", "--data", shapes, *FAST, *args(epochs=2, runs_dir=runs, name="cut")), 130)
    run = runs / "transfer" / "cut"
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(trainer.FinetuneLearner, "train_epoch", original)
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
