"""`mltoolkit.recommend`'s Python API (the technique contract): Config, train -> TrainResult, load -> Predictor
whose records are exactly what `mltk recommend predict --format jsonl` prints, evaluate, tiny_example."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mltoolkit import recommend
from mltoolkit.core.contract import Predictor, TrainResult
from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.recommend.synthetic import ratings_table, tiny_example, write_csv
from tests.conftest import fails, ok


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainResult:
    folder = tmp_path_factory.mktemp("api")
    data = write_csv(folder / "ratings.csv", ratings_table(users=60, items_per_group=10, per_user=6))
    return recommend.train(recommend.Config(data=str(data), model="ease", threads=1), runs_dir=folder / "runs")


def test_contract_sequence_on_the_tiny_example(mltk, tmp_path):
    """train -> evaluate -> predict (CLI jsonl == load(run).predict) -> --resume one more trial -> the npz alone."""
    example = tiny_example(tmp_path)
    runs = ["--runs-dir", tmp_path / "runs"]
    summary = ok(mltk("recommend", "train", *example.train_args, *runs, "-q")).json()
    run = Path(summary["run_dir"])
    assert set(summary) == {"run_dir", "model", "headline", "final", "wall_time_s"}
    metrics = ok(mltk("recommend", "evaluate", run, *example.evaluate_args, *runs, "--format", "json")).json()
    assert metrics["metrics"]["ndcg@10"] == summary["final"]["ndcg@10"]
    printed = ok(mltk("recommend", "predict", run, *example.predict_args, *runs, "--format", "jsonl")).jsonl()
    predictor = recommend.load(run)
    assert isinstance(predictor, Predictor) and predictor.run_dir == run
    assert printed == predictor.predict(example.records) and len(printed) == 10 * len(example.records)
    ok(mltk("recommend", "train", "--resume", run, *example.more_args, *runs, "-q"))  # DATA: the run's
    trials = [r["trial"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "trial" in r]
    assert trials == [0, 1, 2]
    resumed = recommend.load(run).predict(example.records)
    alone = tmp_path / "elsewhere" / "model.npz"
    alone.parent.mkdir()
    shutil.copy(run / "checkpoints" / "model.npz", alone)
    shutil.rmtree(run)
    copy = recommend.load(alone)
    assert copy.run_dir is None and copy.metadata()["run"] is None
    assert copy.predict(example.records) == resumed
    assert copy.config["tune_trials"] == 3  # the file holds its config


def test_train_returns_the_summary_as_a_train_result(trained):
    assert trained.status == "completed" and trained.headline["metric"] == "ndcg@10"
    assert trained.summary == json.loads((trained.run_dir / "summary.json").read_text())
    assert trained.summary["users"] == 60 and trained.summary["items"] == 20
    config = json.loads((trained.run_dir / "config.json").read_text())
    assert Path(config["data"]).is_absolute() and config["tensorboard"] is False


def test_train_without_data_is_refused(mltk, tmp_path):
    with pytest.raises(DataError, match="no data"):
        recommend.train(recommend.Config(), runs_dir=tmp_path)
    fails(mltk("recommend", "train", "--runs-dir", tmp_path), 2, "no data")


def test_predict_keeps_the_input_order_and_mixes_users_and_histories(trained):
    model = recommend.load(trained.run_dir)
    history = {"user": "guest", "history": ["g1-item0", "g1-item1"], "ratings": [5, 4]}
    records = model.predict(["u1", history, "u0"], n=2)
    assert [(r["user"], r["rank"]) for r in records] == [("u1", 1), ("u1", 2), ("guest", 1), ("guest", 2),
                                                          ("u0", 1), ("u0", 2)]  # fmt: skip
    assert all(r["item"].startswith("g1-") for r in records[:4]) and records[4]["item"].startswith("g0-")
    assert records[0] == model.predict(["u1"], n=2)[0]
    explained = model.predict([{"history": ["g0-item1"]}], n=1, explain=True)
    assert explained[0]["user"] == "new" and explained[0]["because"] == ["g0-item1"]
    similar = model.similar(["g0-item1", "unknown"], n=3)
    assert [r["rank"] for r in similar] == [1, 2, 3] and all(r["similar"].startswith("g0-") for r in similar)


@pytest.mark.parametrize(
    ("batch", "says"),
    [
        ("u0", "a list of records"),
        ([["u0"]], "record 0"),
        (["u0", None], "record 1"),
        ([{"history": "g0-item1"}], "list of item ids"),
        ([{"history": ["a", "b"], "ratings": [1]}], "as many finite ratings"),
        ([{"items": ["a"]}], "record 0"),
    ],
)
def test_a_bad_record_is_one_line_naming_it(trained, batch, says):
    with pytest.raises(DataError, match=says) as caught:
        recommend.load(trained.run_dir).predict(batch)
    assert "\n" not in str(caught.value)


def test_bad_options_and_unsupported_requests(trained, tmp_path):
    model = recommend.load(trained.run_dir)
    with pytest.raises(DataError, match="n must be"):
        model.predict(["u0"], n=0)
    with pytest.raises(DataError, match="unknown user 'nobody'"):
        model.predict(["nobody"], strict=True)
    data = json.loads((trained.run_dir / "config.json").read_text())["data"]
    popularity = recommend.train(recommend.Config(data=data, model="popularity", threads=1), runs_dir=tmp_path)
    with pytest.raises(UsageError, match="--explain"):
        recommend.load(popularity.run_dir).predict(["u0"], explain=True)
    assert recommend.load(popularity.run_dir).metadata()["supports"]["similar"] is False


def test_unknown_users_are_summed_up_in_one_warning(trained, capsys):
    records = recommend.load(trained.run_dir).predict([f"x{i}" for i in range(7)] + ["u0"], n=1)
    assert [r["user"] for r in records] == [f"x{i}" for i in range(7)] + ["u0"]
    err = capsys.readouterr().err
    assert err.count("unknown user 'x") == 5 and "7 unknown users in all" in err


def test_metadata_names_what_a_client_needs(trained):
    meta = recommend.load(trained.run_dir).metadata()
    assert {"technique", "run", "mltk_version", "model", "users", "items", "input", "supports"} <= set(meta)
    assert (meta["technique"], meta["model"], meta["users"], meta["items"]) == ("recommend", "ease", 60, 20)
    json.dumps(meta)  # JSON-ready


def test_evaluate_takes_a_run_reference(trained):
    result = recommend.evaluate(trained.run_dir.name, runs_dir=trained.run_dir.parent.parent, k=5)
    assert result["k"] == 5 and "ndcg@5" in result["metrics"]


def test_train_tensorboard_writes_event_files(mltk, tmp_path):
    pytest.importorskip("tensorboard")
    example = tiny_example(tmp_path)
    summary = ok(mltk("recommend", "train", *example.train_args, "--tensorboard", "--runs-dir", tmp_path, "-q")).json()
    assert list((Path(summary["run_dir"]) / "tb").glob("events.out.tfevents.*"))


def test_the_docs_python_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "docs" / "recommend.md").read_text()
    section = text[text.index("## Python API") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", section.index("```python"))]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/recommend.md", "exec"), {})
    assert (tmp_path / "runs" / "recommend" / "ease-ratings" / "eval.json").is_file()
