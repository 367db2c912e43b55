"""transfer's Python API (the technique contract): train -> TrainResult, load(run) -> ImageClassifier taking
paths, bytes, arrays and PIL images alike, bad records as one-line errors, metadata, resume from best.pt
alone, --tensorboard, and the docs example. The CLI == API sequence itself is tests/test_contract.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mltoolkit.core.contract import Predictor, TrainResult
from mltoolkit.core.errors import DataError
from mltoolkit.transfer.synthetic import tiny_example
from tests.conftest import ok


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return tiny_example(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def trained(example, tmp_path_factory) -> TrainResult:
    from mltoolkit import transfer

    data = example.train_args[example.train_args.index("--data") + 1]
    config = transfer.Config(data=data, weights="none", epochs=1, batch_size=4, workers=0, threads=1)
    return transfer.train(config, runs_dir=tmp_path_factory.mktemp("runs"))


def test_train_returns_the_summary_as_a_train_result(trained):
    assert isinstance(trained, TrainResult) and trained.status == "completed"
    assert trained.headline["metric"] == "val_acc" and 0 <= trained.headline["value"] <= 1
    assert trained.summary == json.loads((trained.run_dir / "summary.json").read_text())
    assert trained.summary["best_checkpoint"] == "checkpoints/best.pt" and trained.summary["epochs_run"] == 1
    assert trained.summary["best"]["epoch"] == 1 and trained.summary["final"]["epoch"] == 1


def test_paths_bytes_arrays_and_pil_images_predict_alike(trained, example):
    from PIL import Image

    from mltoolkit import transfer

    model = transfer.load(trained.run_dir, threads=1)
    assert isinstance(model, Predictor) and model.run_dir == trained.run_dir
    paths = example.records
    by_path = model.predict(paths, top_k=2)
    assert [r["path"] for r in by_path] == paths and all(len(r["top_k"]) == 2 for r in by_path)
    unnamed = [{k: v for k, v in r.items() if k != "path"} for r in by_path]
    with Image.open(paths[0]) as image:
        pil = image.convert("RGB")
    others = [Path(paths[0]).read_bytes(), np.asarray(pil), pil]
    assert model.predict(others, top_k=2) == [unnamed[0]] * 3
    assert model.predict([Path(paths[1])]) == [{k: by_path[1][k] for k in ("path", "label", "probability")}]
    assert model.predict([]) == []


@pytest.mark.parametrize(
    ("batch", "says"),
    [
        ("one.png", "expected a list of images"),
        ([b"not an image"], "record 0: not a readable image"),
        (["no-such.png"], "record 0: no-such.png: file not found"),
        ([None], "record 0: expected an image file path"),
        ([np.zeros((4, 4), np.float32)], r"record 0: expected .* got array of float32 \(4, 4\)"),
    ],
)
def test_bad_records_are_one_line_data_errors(trained, batch, says):
    from mltoolkit import transfer

    model = transfer.load(trained.run_dir, threads=1)
    with pytest.raises(DataError, match=says) as caught:
        model.predict(batch)
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match="--top-k must be at least 1"):
        model.predict([], top_k=0)


def test_metadata_says_what_a_client_needs(trained):
    from mltoolkit import __version__, transfer
    from mltoolkit.core.checkpoint import load_checkpoint

    metadata = transfer.load(trained.run_dir).metadata()
    assert metadata["technique"] == "transfer" and metadata["run"] == trained.run_dir.name
    assert metadata["mltk_version"] == __version__ and metadata["model"] == "resnet18"
    assert metadata["classes"] == ["circle", "square", "triangle"]
    pre = load_checkpoint(trained.run_dir / "checkpoints" / "best.pt", "transfer")["state"]["preprocessing"]
    assert (metadata["image_size"], metadata["resize_size"]) == (pre["crop_size"], pre["resize_size"])
    json.dumps(metadata)  # JSON-ready, for /metadata


def test_resume_from_best_alone_goes_on_from_its_epoch(mltk, trained, tmp_path):
    """A kill during the first save of last.pt leaves best.pt alone: --resume continues from its weights."""
    run = Path(shutil.copytree(trained.run_dir, tmp_path / "cut"))
    (run / "checkpoints" / "last.pt").unlink()
    out = ok(mltk("transfer", "train", "--resume", run, "--epochs", "2", "--runs-dir", tmp_path, "-q")).json()
    assert out["run_dir"] == str(run) and out["epochs_run"] == 2
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2] and (run / "checkpoints" / "last.pt").is_file()


def test_train_tensorboard_writes_event_files(mltk, example, tmp_path):
    pytest.importorskip("tensorboard")
    out = ok(mltk("transfer", "train", *example.train_args, "--tensorboard", "--runs-dir", tmp_path, "-q")).json()
    assert list((Path(out["run_dir"]) / "tb").glob("events.out.tfevents.*"))


def test_the_docs_python_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "docs" / "transfer.md").read_text()
    section = text[text.index("## Python API") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", section.index("```python"))]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/transfer.md", "exec"), {})
    assert (tmp_path / "runs" / "transfer" / "shapes" / "eval.json").is_file()
