"""The segment Python API (``mltoolkit.segment``): train -> load -> predict on every image kind -> evaluate ->
resume, on the tiny data of ``synthetic.tiny_example``; and ``train --tensorboard``."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mltoolkit import segment
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.errors import DataError
from tests.conftest import ok


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from mltoolkit.segment.synthetic import tiny_example

    folder = tmp_path_factory.mktemp("segment-api")
    example = tiny_example(folder)
    config = segment.Config(data=example.train_args[0], size="32", epochs=1, batch_size=2, workers=0, threads=1)
    return example, folder, segment.train(config, runs_dir=folder / "runs", name="tiny")


def test_train_returns_the_summary_as_a_train_result(trained):
    _, folder, result = trained
    assert isinstance(result, TrainResult) and result.status == "completed"
    assert result.run_dir == folder / "runs" / "segment" / "tiny"
    assert result.headline == {"metric": "val_miou", "value": result.summary["best"]["miou"]}
    assert result.summary["best_checkpoint"] == "checkpoints/best.pt" and result.summary["epochs"] == 1


def test_every_image_kind_gives_the_same_record(trained):
    example, _, result = trained
    path = example.records[0]
    picture = Image.open(path).convert("RGB")
    encoded = io.BytesIO()
    picture.save(encoded, format="PNG")
    model = segment.load(result.run_dir)
    records = model.predict([path, encoded.getvalue(), np.asarray(picture), picture])
    assert records[0]["image"] == path and all("image" not in r for r in records[1:])
    for record in records:
        assert record["mask"].dtype == np.uint8 and record["mask"].shape == (32, 32)
        assert np.array_equal(record["mask"], records[0]["mask"])
        assert record["fractions"] == records[0]["fractions"] and (record["width"], record["height"]) == (32, 32)
    assert sum(records[0]["fractions"].values()) == pytest.approx(1, abs=1e-3)
    metadata = model.metadata()
    assert metadata["classes"] == ["background", "circle", "square", "triangle"]
    assert metadata["image_size"] == [32, 32] and metadata["run"] == "tiny" and metadata["mltk_version"]


@pytest.mark.parametrize(
    ("record", "says"),
    [("missing.png", "record 1: missing.png: file not found"), (b"not an image", "record 1: not a readable image"),
     (np.zeros((4, 4), np.float32), "record 1: expected an image file path")],
)  # fmt: skip
def test_a_bad_record_is_a_data_error_naming_it(trained, record, says):
    example, _, result = trained
    with pytest.raises(DataError, match=says):
        segment.load(result.run_dir).predict([example.records[0], record])


def test_evaluate_and_resume_through_the_api(trained):
    example, folder, result = trained
    assert 0 <= segment.evaluate(str(result.run_dir), threads=1)["miou"] <= 1
    config = segment.Config(data=example.train_args[0], size="32", epochs=2, batch_size=2, workers=0, threads=1)
    resumed = segment.train(config, runs_dir=folder / "runs", resume=str(result.run_dir))
    assert resumed.run_dir == result.run_dir and resumed.summary["epochs"] == 2


def test_train_tensorboard_writes_event_files(mltk, tmp_path):
    from mltoolkit.segment.synthetic import tiny_example

    example = tiny_example(tmp_path)
    out = ok(mltk("segment", "train", *example.train_args, "--tensorboard", "--runs-dir", tmp_path / "runs", "-q"))
    events = list((tmp_path / "runs" / "segment").glob("*/tb/events.out.tfevents.*"))
    assert out.json()["run_dir"] and events
