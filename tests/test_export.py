"""`mltk export`: every technique's tiny run to every format it writes, reloaded by its runtime, with parity,
metadata, the predict backends, and bad input.

The runs are trained once per module through the CLI, at the smallest settings that give a real model.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import args, fails, ok

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

RL_TINY = args(total_steps=300, learning_starts=50, eval_every=150, eval_episodes=2, confirm_episodes=0)
RL_TINY += args(batch_size=16, hidden="16,16", buffer_size=1000)
TRANSFER_TINY = ["--weights", "none", "--model", "resnet18", "--image-size", "32", "--threads", "1", "--workers", "0"]
SEGMENT_TINY = ["--size", "48x64", "--batch-size", "4", "--threads", "1", "--workers", "0", "--epochs", "1"]


def _train(technique: str, *argv: object) -> Path:
    """A run trained through the CLI (module fixtures cannot use the function-scoped ``mltk`` fixture)."""
    from typer.testing import CliRunner

    from mltoolkit.cli import app

    result = CliRunner().invoke(app, [technique, *map(str, argv), "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout.strip().splitlines()[-1])["run_dir"])


def _export(mltk, run: Path, fmt: str, *extra: object) -> dict:
    result = ok(mltk("export", run, "--format", fmt, *extra))
    assert len(result.stdout.strip().splitlines()) == 1, "stdout holds the one JSON result and nothing else"
    entry = result.json()
    assert entry["ok"] and Path(entry["file"]).is_file()
    return entry


def _onnx_metadata(path: str) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(path).metadata_props}


def _parity_passed(entry: dict, *samples: str) -> None:
    for name in samples:
        check = entry["parity"][name]
        assert check["samples"] > 0 and check.get("relative_diff", 0) <= 1e-4, check
        assert check.get("argmax_flips", 0) == 0, check


def _same_predictions(served: list[dict], plain: list[dict], label: str, scores: str) -> None:
    """The ONNX backend's records against the native ones: identical labels, scores within the parity tolerance."""
    assert [r[label] for r in served] == [r[label] for r in plain]
    got, expected = np.array([r[scores] for r in served]), np.array([r[scores] for r in plain])
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


@pytest.fixture(scope="module")
def rl_run(tmp_path_factory) -> Path:
    return _train("rl", "train", "--runs-dir", tmp_path_factory.mktemp("runs"), *RL_TINY)


@pytest.fixture(scope="module")
def transfer_run(tmp_path_factory) -> Path:
    from mltoolkit.transfer.synthetic import make_shapes_folder

    data = make_shapes_folder(tmp_path_factory.mktemp("shapes"), train=12, val=6, size=32)
    runs = tmp_path_factory.mktemp("runs")
    return _train("transfer", "finetune", "--data", data, *TRANSFER_TINY, *args(epochs=1, batch_size=4, runs_dir=runs))


@pytest.fixture(scope="module")
def segment_run(tmp_path_factory) -> Path:
    from mltoolkit.segment.synthetic import write_shapes

    data = write_shapes(tmp_path_factory.mktemp("seg"), train=4, val=2, size=64, layout="folders", seed=1)
    return _train("segment", "train", "--data", data, "--runs-dir", tmp_path_factory.mktemp("runs"), *SEGMENT_TINY)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """A binary target with a string categorical and missing numbers: the encodings the graph must match."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 300
    x1, x2, color = rng.normal(size=n), rng.normal(size=n), rng.choice(["red", "green", "blue"], size=n)
    score = x1 + 0.5 * x2 + np.where(color == "red", 1.5, 0.0) + rng.normal(scale=0.3, size=n)
    x1[::13] = np.nan
    path = tmp_path_factory.mktemp("table") / "table.csv"
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "x1": x1, "x2": x2, "color": color, "score": score})
    share = 1 / (1 + np.exp(-score))  # a target in [0, 1] for cross_entropy
    frame.assign(label=np.where(score > 0.4, "yes", "no"), share=share).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def boost_run(tmp_path_factory, table) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    options = args(target="label", id="id", drop="score,share", runs_dir=runs, num_rounds=20, threads=1)
    return _train("boost", "train", table, *options)


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    from mltoolkit.recommend.synthetic import ratings_table

    path = tmp_path_factory.mktemp("ratings") / "ratings.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user", "item", "rating", "timestamp"])
        writer.writerows(ratings_table(users=60, items_per_group=10, per_user=6, seed=0))
    return path


# ------------------------------------------------------------------------------------------------ rl


def test_rl_onnx_and_torchscript_match_the_policy(mltk, rl_run):
    import torch

    entry = _export(mltk, rl_run, "onnx")
    _parity_passed(entry, "real", "random")
    meta = _onnx_metadata(entry["file"])
    assert meta["technique"] == "rl" and meta["run"] == rl_run.name and meta["env"] == "CartPole-v1"
    assert json.loads(meta["input_shape"]) == ["batch", 4] and meta["mltk_version"]
    scripted = _export(mltk, rl_run, "torchscript")
    _parity_passed(scripted, "real", "random")
    extra = {"mltk.json": ""}
    torch.jit.load(scripted["file"], _extra_files=extra)
    assert json.loads(extra["mltk.json"])["technique"] == "rl"
    formats = [e["format"] for e in json.loads((rl_run / "export.json").read_text())["exports"]]
    assert formats == ["onnx", "torchscript"]

    # predict --backend onnxruntime prints what the torch policy prints, from the CLI and the Python API alike
    from mltoolkit import rl
    from mltoolkit.export.rl import observations

    seen = observations("CartPole-v1", 20, seed=3)
    lines = "\n".join(json.dumps(o.tolist()) for o in seen) + "\n"
    plain = ok(mltk("rl", "predict", rl_run, "--q-values", input=lines)).jsonl()
    served = ok(mltk("rl", "predict", rl_run, "--q-values", "--backend", "onnxruntime", input=lines)).jsonl()
    _same_predictions(served, plain, "action", "q_values")
    agent = rl.load(rl_run, backend="onnxruntime")
    assert agent.policy.checkpoint.suffix == ".onnx" and agent.metadata() == rl.load(rl_run).metadata()
    _same_predictions(agent.predict(list(seen), q_values=True), plain, "action", "q_values")


@pytest.mark.parametrize("technique", ["rl", "transfer", "segment", "boost"])
def test_predict_backend_needs_an_export_and_the_extra(mltk, request, technique, tmp_path, monkeypatch):
    from mltoolkit.techniques import get

    help_text = " ".join(ok(mltk(technique, "predict", "--help")).stdout.replace("│", " ").split())
    assert f"--backend <str> What runs the model, one of: {get(technique).backends[0]}, onnxruntime." in help_text
    run = request.getfixturevalue(f"{technique}_run")
    inputs = ["-", "-o", tmp_path / "masks"] if technique == "segment" else ["-"]
    assert mltk(technique, "predict", run, *inputs, "--backend", "tensorrt").exit_code == 2

    bare = Path(shutil.copytree(run, tmp_path / "bare", ignore=shutil.ignore_patterns("export*")))
    onnx = (technique, "predict", bare, *inputs, "--backend", "onnxruntime")
    fails(mltk(*onnx), 3, f"mltk export {bare} --format onnx")
    monkeypatch.setattr("mltoolkit.export.deps.find_spec", lambda name: None)
    fails(mltk(*onnx), 4, "pip install 'mltk[export]'")


def test_rl_fixed_batch_and_half(mltk, rl_run, tmp_path):
    fixed = _export(mltk, rl_run, "onnx", "--batch", "5", "--output", tmp_path / "b5.onnx")
    _parity_passed(fixed, "real")
    assert json.loads(_onnx_metadata(fixed["file"])["input_shape"]) == [5, 4]
    half = _export(mltk, rl_run, "torchscript", "--half")
    assert half["file"].endswith("model-fp16.pt") and half["parity"]["real"]["max_abs_diff"] < 0.05


# ------------------------------------------------------------------------------------------ transfer


def test_transfer_onnx_takes_raw_pixels_and_predicts_like_transfer_predict(mltk, transfer_run):
    import torch

    entry = _export(mltk, transfer_run, "onnx")
    _parity_passed(entry, "real", "random")
    meta = _onnx_metadata(entry["file"])
    assert json.loads(meta["class_names"]) == ["circle", "square", "triangle"]
    assert json.loads(meta["input_shape"]) == ["batch", 3, 32, 32]
    assert json.loads(meta["normalization"])["inside_graph"] is True
    _parity_passed(_export(mltk, transfer_run, "torchscript"), "real", "random")

    # predict --backend onnxruntime classifies like torch, from the CLI and the Python API alike
    from mltoolkit import transfer
    from mltoolkit.core.images import load_rgb

    val = Path(json.loads((transfer_run / "config.json").read_text())["data"]) / "val"
    plain = ok(mltk("transfer", "predict", transfer_run, val, "--format", "jsonl")).jsonl()
    served = ok(mltk("transfer", "predict", transfer_run, val, "--format", "jsonl", "--backend", "onnxruntime")).jsonl()
    assert [r["path"] for r in served] == [r["path"] for r in plain]
    _same_predictions(served, plain, "label", "probability")
    classifier = transfer.load(transfer_run, backend="onnxruntime")
    assert classifier.transform(load_rgb(plain[0]["path"])).dtype == torch.uint8  # the graph normalises itself
    assert classifier.metadata() == transfer.load(transfer_run).metadata()
    _same_predictions(classifier.predict([r["path"] for r in plain]), plain, "label", "probability")


# ------------------------------------------------------------------------------------------- segment


def test_segment_scores_onnx_labels_torchscript_and_masks_like_segment_predict(mltk, segment_run, tmp_path):
    import torch

    entry = _export(mltk, segment_run, "onnx")
    _parity_passed(entry, "real", "random")
    meta = _onnx_metadata(entry["file"])
    assert json.loads(meta["input_shape"]) == ["batch", 3, 48, 64] and len(json.loads(meta["class_names"])) >= 2
    labels = _export(mltk, segment_run, "torchscript", "--labels")
    assert labels["file"].endswith("model-labels.pt") and labels["parity"]["real"]["argmax_equal"] == 1.0
    traced = torch.jit.load(labels["file"])
    assert traced(torch.zeros(1, 3, 48, 64, dtype=torch.uint8)).shape == (1, 48, 64)

    # predict --backend onnxruntime segments like torch, from the Python API and the CLI alike
    from mltoolkit import segment
    from mltoolkit.core.images import open_image

    val = Path(json.loads((segment_run / "config.json").read_text())["data"]) / "val" / "images"
    images = [open_image(p) for p in sorted(val.iterdir())]
    native, onnx = segment.load(segment_run), segment.load(segment_run, backend="onnxruntime")
    assert onnx.metadata() == native.metadata()
    for got, expected in zip(onnx.predict(images), native.predict(images), strict=True):
        assert got["mask"].shape == expected["mask"].shape and (got["mask"] == expected["mask"]).mean() > 0.999
    plain = ok(mltk("segment", "predict", segment_run, val, "-o", tmp_path / "torch")).jsonl()
    served = ok(mltk("segment", "predict", segment_run, val, "-o", tmp_path / "onnx", "--backend", "onnxruntime"))
    for got, expected in zip(served.jsonl(), plain, strict=True):
        assert [got[k] for k in ("image", "width", "height")] == [expected[k] for k in ("image", "width", "height")]
        assert np.allclose(list(got["fractions"].values()), list(expected["fractions"].values()), atol=1e-3)


# --------------------------------------------------------------------------------------------- boost


def test_boost_onnx_keeps_mltk_encoding_and_predicts_like_boost_predict(mltk, boost_run, table):
    entry = _export(mltk, boost_run, "onnx")
    _parity_passed(entry, "real", "random")
    meta = _onnx_metadata(entry["file"])
    assert json.loads(meta["feature_names"]) == ["x1", "x2", "color"]
    assert json.loads(meta["categorical_levels"]) == {"color": ["blue", "green", "red"]}
    assert json.loads(meta["class_names"]) == ["no", "yes"]

    # boost.load(run, backend="onnxruntime") scores rows like LightGBM; contributions need LightGBM
    import pandas as pd

    from mltoolkit import boost
    from mltoolkit.core.errors import DataError

    rows = pd.read_csv(table).drop(columns=["label", "score", "share"]).to_dict("records")
    native, onnx = boost.load(boost_run), boost.load(boost_run, backend="onnxruntime")
    assert onnx.metadata() == native.metadata() and onnx.run_dir == native.run_dir
    expected = native.predict(rows, proba=True)
    _same_predictions(onnx.predict(rows, proba=True), expected, "prediction", "proba_yes")
    assert [r["id"] for r in onnx.predict(rows[:5])] == [r["id"] for r in expected[:5]]
    with pytest.raises(DataError, match="--explain"):
        onnx.predict(rows, explain=True)

    plain = ok(mltk("boost", "predict", boost_run, table, "--proba", "--format", "jsonl")).jsonl()
    served = ok(mltk("boost", "predict", boost_run, table, "--proba", "--format", "jsonl", "--backend", "onnxruntime"))
    assert [r["id"] for r in served.jsonl()] == [r["id"] for r in plain]
    _same_predictions(served.jsonl(), plain, "prediction", "proba_yes")
    fails(mltk("boost", "predict", boost_run, table, "--explain", "--backend", "onnxruntime"), 3, "--explain")


def test_boost_objective_the_converter_cannot_express_is_exit_3(mltk, table, tmp_path):
    run = _train("boost", "train", table, "--target", "share", "--drop", "label,score", "--runs-dir", tmp_path,
                 "--num-rounds", "5", "--param", "objective=cross_entropy", "--id", "id")  # fmt: skip
    fails(mltk("export", run, "--format", "onnx"), 3, "cross_entropy", "model.txt")
    assert not list(run.glob("export/*")) and not list(run.glob("export/.*"))


# ----------------------------------------------------------------------------------------- recommend


@pytest.mark.parametrize("model", ["als", "ease"])
def test_recommend_arrays_score_users_like_recommend_predict(mltk, ratings, tmp_path, model):
    from mltoolkit.export.recommend import read_npz, scores

    run = _train("recommend", "fit", ratings, "--model", model, "--runs-dir", tmp_path)
    entry = _export(mltk, run, "npz")
    _parity_passed(entry, "users")
    arrays = read_npz(Path(entry["file"]))
    user = list(arrays["user_ids"]).index("u7")
    ranked = scores(arrays, np.array([user]))[0]
    ranked[
        arrays["user_items_indices"][arrays["user_items_indptr"][user] : arrays["user_items_indptr"][user + 1]]
    ] = -np.inf
    top = [str(arrays["item_ids"][i]) for i in np.argsort(-ranked)[:3]]
    printed = list(csv.DictReader(io.StringIO(ok(mltk("recommend", "predict", run, "--users", "u7", "-n", 3)).stdout)))
    assert top == [row["item"] for row in printed]

    import pyarrow.parquet as pq

    vectors = pq.read_table(_export(mltk, run, "parquet")["file"]).to_pydict()
    assert set(vectors["kind"]) == ({"user", "item"} if model == "als" else {"item"})
    assert len(vectors["id"]) == len(vectors["vector"]) and len(vectors["vector"][0]) > 0


# ----------------------------------------------------------------------------------------- bad input


def test_refusals(mltk, rl_run, tmp_path, monkeypatch):
    fails(mltk("export", rl_run, "--format", "npz"), 3, "onnx, torchscript")
    assert mltk("export", rl_run, "--format", "onnx", "--labels").exit_code == 2
    assert mltk("export", rl_run, "--format", "onnx", "--batch", "zero").exit_code == 2
    assert mltk("export", rl_run, "--format", "onnx", "--output", "-").exit_code == 2
    assert mltk("export", rl_run, "--format", "torchscript", "--opset", "17").exit_code == 2

    unfinished = Path(shutil.copytree(rl_run, tmp_path / "unfinished"))
    (unfinished / "checkpoints" / "best.pt").unlink()
    shutil.rmtree(unfinished / "export", ignore_errors=True)
    fails(mltk("export", unfinished, "--format", "torchscript"), 3, "best.pt")

    monkeypatch.setattr("mltoolkit.export.deps.find_spec", lambda name: None)
    fails(mltk("export", unfinished, "--format", "onnx"), 4, "pip install 'mltk[export]'")


def test_force_overwrites_and_a_parity_failure_writes_nothing(mltk, rl_run, tmp_path, monkeypatch):
    target = tmp_path / "policy.pt"
    _export(mltk, rl_run, "torchscript", "--output", target)
    fails(mltk("export", rl_run, "--format", "torchscript", "--output", target), 3, "already exists", "--force")
    before = target.stat().st_mtime_ns
    _export(mltk, rl_run, "torchscript", "--output", target, "--force")
    assert target.stat().st_mtime_ns != before

    monkeypatch.setattr("mltoolkit.export.parity.TOLERANCE", -1.0)  # every difference, even 0, is too large
    fails(mltk("export", rl_run, "--format", "torchscript", "--output", tmp_path / "no.pt"), 3, "parity check failed")
    assert not (tmp_path / "no.pt").exists() and not list(tmp_path.glob(".no.*"))
    last = json.loads((rl_run / "export.json").read_text())["exports"][-1]
    assert last["ok"] is False and "parity" in last
