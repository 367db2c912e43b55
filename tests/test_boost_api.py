"""`mltoolkit.boost`'s Python API (the technique contract): Config, train -> TrainResult, load -> Predictor whose
records are exactly what `mltk boost predict --format jsonl` prints, rows checked like a table's, metadata,
evaluate, tiny_example, --resume adding rounds to a finished run, model.txt loading alone, --tensorboard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import fails, ok

pytest.importorskip("lightgbm")

from mltoolkit import boost  # noqa: E402
from mltoolkit.boost.data import Table  # noqa: E402
from mltoolkit.boost.schema import Feature, Schema  # noqa: E402
from mltoolkit.boost.score import records  # noqa: E402
from mltoolkit.boost.synthetic import tiny_example  # noqa: E402
from mltoolkit.core.contract import Predictor, TrainResult  # noqa: E402
from mltoolkit.core.errors import DataError, ResourceError, UsageError  # noqa: E402

PRINTED = {"run_dir", "task", "validation", "best_round", "valid", "wall_time_s"}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return tiny_example(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def trained(example, tmp_path_factory) -> TrainResult:
    data = example.train_args[0]
    config = boost.Config(data=data, target="label", id=["id"], num_rounds=5, early_stopping=0, refit=False, threads=1)
    return boost.train(config, runs_dir=tmp_path_factory.mktemp("runs"))


def test_contract_sequence_on_the_tiny_example(mltk, tmp_path):
    """train -> evaluate -> predict (CLI jsonl == load(run).predict) -> --resume one more round -> model.txt alone."""
    example = tiny_example(tmp_path)
    runs = ["--runs-dir", tmp_path / "runs"]
    summary = ok(mltk("boost", "train", *example.train_args, *runs, "-q")).json()
    run = Path(summary["run_dir"])
    assert set(summary) == PRINTED and summary["best_round"] == 5
    metrics = ok(mltk("boost", "evaluate", run, *example.evaluate_args, *runs, "--format", "json")).json()
    assert metrics["rows"] == 50 and metrics["auc"] > 0.8
    printed = ok(mltk("boost", "predict", run, *example.predict_args, *runs, "--format", "jsonl")).jsonl()
    model = boost.load(run)
    assert isinstance(model, Predictor) and model.run_dir == run and model.technique == "boost"
    assert printed == model.predict(example.records, proba=True) and len(printed) == len(example.records)
    resumed = ok(mltk("boost", "train", "--resume", run, *example.more_args, *runs, "-q")).json()
    assert resumed["run_dir"] == str(run) and resumed["best_round"] == 6
    assert (run / "model.txt").read_text().count("Tree=") == 6
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["round"] for row in rows] == [1, 2, 3, 4, 5, 6] and "train_binary_logloss" in rows[-1]
    again = boost.load(run).predict(example.records, proba=True)
    assert again != printed  # the added round changed the scores
    alone = tmp_path / "elsewhere" / "model.txt"
    alone.parent.mkdir()
    shutil.copy(run / "model.txt", alone)
    shutil.rmtree(run)
    copy = boost.load(alone)
    assert copy.run_dir is None and copy.metadata()["run"] is None
    assert copy.predict(example.records, proba=True) == again


def test_train_returns_the_summary_as_a_train_result(trained):
    assert trained.status == "completed" and trained.headline["metric"] == "valid_auc"
    assert trained.summary == json.loads((trained.run_dir / "summary.json").read_text())
    assert trained.summary["best"]["round"] == trained.summary["final"]["rounds"] == 5
    assert trained.summary["best_checkpoint"] == "model.txt" and trained.summary["validation"] == "0.2 split"
    config = json.loads((trained.run_dir / "config.json").read_text())
    assert config["tensorboard"] is False and config["id"] == ["id"]


def test_predict_equals_the_cli_for_explain_and_a_row_alone(mltk, trained, example):
    model = boost.load(trained.run_dir, threads=1)
    rows = model.predict(example.records, proba=True, explain=True)
    printed = ok(mltk("boost", "predict", trained.run_dir, example.predict_args[0], "--proba", "--explain",
                      "--format", "jsonl")).jsonl()  # fmt: skip
    assert rows == printed and {"contrib_x1", "contrib_color", "contrib_bias"} <= set(rows[0])
    assert [model.predict([record], proba=True, explain=True)[0] for record in example.records] == rows
    assert model.predict([]) == []


def test_rows_may_leave_out_values_and_add_columns(trained, example):
    model = boost.load(trained.run_dir)
    record = {**example.records[0], "x2": None, "unused": "anything", "label": "yes"}
    assert model.predict([record])[0]["id"] == record["id"]
    partial = [example.records[0], {k: v for k, v in example.records[1].items() if k != "x2"}]  # x2 missing in one
    assert len(model.predict(partial)) == 2
    assert model.predict([{**example.records[0], "id": None}])[0]["id"] is None  # null in JSON, as the CLI prints it


# Rows a client may send: numbers (an int among floats), text categories, an unseen one, left-out keys, None,
# and values pandas converts its own way (a number in text, a bool, a number for a text level).
ODD_ROWS = [
    {"id": 1, "x1": 0.25, "x2": -1, "color": "red"},
    {"id": 2, "x1": -0.7, "x2": 0.4, "color": "purple"},
    {"id": 3, "x1": 1.5, "color": "blue"},
    {"id": None, "x1": None, "x2": None, "color": None},
    {"id": "a", "x1": "0.5", "x2": True, "color": 7},
    {"x1": 0.1, "x2": 0.2, "color": "green", "unused": "anything"},
]


def _outcome(score: Any, batch: list[dict[str, Any]], capsys: pytest.CaptureFixture) -> tuple[Any, str]:
    """What ``score(batch)`` returns or refuses, and what it warns."""
    try:
        result = score(batch)
    except DataError as exc:
        result = f"DataError: {exc}"
    return result, capsys.readouterr().err


def _table_path(score: Any) -> Any:
    """``score`` applied to the table of the rows, as predict did before it encoded rows itself."""
    return lambda batch: score(Table("records", frame=pd.DataFrame.from_records(batch)))


def test_rows_are_scored_as_the_table_of_them(trained, capsys):
    """A row alone, and the rows together, give the table path's records (as JSON: 7 and 7.0 differ), warnings
    and refusals."""
    model = boost.load(trained.run_dir, threads=1)
    through_table = _table_path(lambda table: records(model.score(table, proba=True, explain=True)))
    for batch in [[row] for row in ODD_ROWS] + [ODD_ROWS, ODD_ROWS[:4]]:  # ids 1, 2, 3, None: 1.0, 2.0, 3.0, None
        fast, slow = (_outcome(score, batch, capsys) for score in (lambda b: model.predict(b, proba=True,
                      explain=True), through_table))  # fmt: skip
        assert json.dumps(fast) == json.dumps(slow)
    assert "'purple'); treated as missing" in _outcome(model.predict, ODD_ROWS[1:2], capsys)[1]
    assert _outcome(model.predict, ODD_ROWS[2:3], capsys)[0] == (
        "DataError: records: missing feature column(s) x2 used in training"
    )


def test_rows_encode_as_the_table_of_them_for_every_kind_of_level(capsys):
    """The schema's row encoder against its table encoder: numeric, text, numeric, boolean and mixed levels."""
    schema = Schema(
        "binary",
        "y",
        [Feature("n"), Feature("text", True, ["blue", "red"]), Feature("code", True, [1, 2, 5]),
         Feature("flag", True, [False, True]), Feature("mixed", True, [1, "a"])],
    )  # fmt: skip
    rows = [
        {"n": 0.5, "text": "red", "code": 2, "flag": True, "mixed": 1},
        {"n": 3, "text": "green", "code": 2.0, "flag": False, "mixed": "a"},
        {"n": None, "text": None, "code": None, "flag": None, "mixed": None},
        {"n": 1, "text": "blue", "code": 7, "flag": 1, "mixed": "b"},
        {"text": "red", "code": 5, "flag": True, "mixed": "a"},
        {"n": "2.5", "text": 3, "code": "5", "mixed": 2},
        {"n": True, "text": "red", "code": "x", "flag": True, "mixed": "a"},
        {"n": float("nan"), "text": "red", "code": True, "flag": 0, "mixed": 1.0},
    ]
    bad = [{**rows[0], "n": "abc"}, {**rows[0], "n": -float("inf")}, {**rows[1], "n": float("inf")}]
    fast = lambda batch: schema.encode_rows(batch, "records")  # noqa: E731
    slow = _table_path(schema.encode)
    for batch in [[row] for row in rows + bad] + [rows, rows + bad[1:], bad[::-1]]:
        (got, warned), (expected, says) = _outcome(fast, batch, capsys), _outcome(slow, batch, capsys)
        assert warned == says
        assert got == expected if isinstance(got, str) else np.array_equal(got, expected, equal_nan=True)


@pytest.mark.parametrize(
    ("batch", "says"),
    [
        ({"x1": 1.0}, "expected a list of rows"),
        ("x1,x2", "expected a list of rows"),
        ([[1.0, 2.0, "red"]], "records: row 1: expected an object of column -> value, got list"),
        ([{"id": 1, "x1": [1], "x2": 0, "color": "red"}], "records: row 1: column 'x1' holds a list"),
        ([{"id": 1, "x1": 0, "x2": 0, "color": "red"}, {"id": 2, "x1": "abc"}], "column 'x1' row 2: 'abc' is not"),
        ([{"id": 1, "x1": 0, "color": "red"}], "records: missing feature column(s) x2 used in training"),
        ([{"x1": 0, "x2": 0, "color": "red"}], "records: missing id column(s) id"),
        ([{"id": 1, "x1": float("inf"), "x2": 0, "color": "red"}], "column 'x1' row 1: inf is not a finite number"),
    ],
)
def test_a_bad_row_is_one_line_naming_it(trained, batch, says):
    with pytest.raises(DataError) as caught:
        boost.load(trained.run_dir).predict(batch)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_rows_are_checked_like_a_table(mltk, trained, tmp_path):
    """The same data error for a row as for the table holding it, but for the source it names."""
    path = tmp_path / "bad.csv"
    path.write_text("id,x1,x2,color\n1,0.5,0.1,red\n2,abc,0.2,blue\n")
    fails(mltk("boost", "predict", trained.run_dir, path), 3, f"{path}: column 'x1' row 2: 'abc' is not a number")
    rows = [{"id": 1, "x1": 0.5, "x2": 0.1, "color": "red"}, {"id": 2, "x1": "abc", "x2": 0.2, "color": "blue"}]
    with pytest.raises(DataError, match="^records: column 'x1' row 2: 'abc' is not a number$"):
        boost.load(trained.run_dir).predict(rows)


def test_metadata_names_what_a_client_needs(trained):
    meta = boost.load(trained.run_dir).metadata()
    assert (meta["technique"], meta["run"], meta["task"], meta["target"]) == ("boost", trained.run_dir.name,
                                                                            "binary", "label")  # fmt: skip
    assert meta["classes"] == ["no", "yes"] and meta["feature_names"] == ["x1", "x2", "color"]
    assert meta["features"][2] == {"name": "color", "dtype": "category"} and meta["features"][0]["dtype"] == "number"
    assert meta["categorical_levels"] == {"color": ["blue", "green", "red"]} and meta["id_columns"] == ["id"]
    assert {"mltk_version", "input", "output", "options"} <= set(meta)
    json.dumps(meta)  # JSON-ready


def test_evaluate_load_and_their_refusals(trained, example):
    metrics = boost.evaluate(trained.run_dir.name, example.evaluate_args[0], runs_dir=trained.run_dir.parent.parent)
    assert metrics["rows"] == 50 and json.loads((trained.run_dir / "eval.json").read_text())["auc"] == metrics["auc"]
    with pytest.raises(UsageError, match="needs DATA"):
        boost.evaluate(trained.run_dir)
    with pytest.raises(ResourceError, match="CPU only"):
        boost.load(trained.run_dir, device="cuda")


def test_a_model_file_without_the_schema_line_is_refused_outside_its_run(trained, tmp_path):
    text = (trained.run_dir / "model.txt").read_text()
    assert text.count("\nmltk_schema:") == 1 and text.rstrip().splitlines()[-1].startswith("pandas_categorical:")
    bare = tmp_path / "bare.txt"
    bare.write_text("".join(line for line in text.splitlines(True) if not line.startswith("mltk_schema:")))
    with pytest.raises(DataError, match="holds no mltk schema"):
        boost.load(bare)


def test_resume_of_a_finished_run_needs_more_rounds_and_the_same_model(mltk, tmp_path):
    example = tiny_example(tmp_path)
    run = ok(mltk("boost", "train", *example.train_args, "--runs-dir", tmp_path, "-q")).json()["run_dir"]
    fails(mltk("boost", "train", "--resume", run, "--num-rounds", "5", "--runs-dir", tmp_path), 3, "already has 5")
    fails(mltk("boost", "train", "--resume", run, "--num-rounds", "7", "--num-leaves", "4", "--runs-dir", tmp_path),
          2, "--num-leaves cannot change")  # fmt: skip
    ok(mltk("boost", "train", "--resume", run, "--num-rounds", "8", "--threads", "2", "--runs-dir", tmp_path, "-q"))
    assert json.loads((Path(run) / "summary.json").read_text())["final"]["rounds"] == 8


def test_ctrl_c_while_adding_rounds_resumes_from_the_rounds_saved(mltk, tmp_path, monkeypatch):
    from mltoolkit.boost import training

    example = tiny_example(tmp_path)
    run = Path(ok(mltk("boost", "train", *example.train_args, "--runs-dir", tmp_path, "-q")).json()["run_dir"])
    original = training.RoundLogger.__call__

    def interrupt_at_round_7(self, env):
        original(self, env)
        if env.iteration + 1 == 7:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.RoundLogger, "__call__", interrupt_at_round_7)
    assert mltk("boost", "train", "--resume", run, "--num-rounds", "10", "--runs-dir", tmp_path, "-q").exit_code == 130
    monkeypatch.setattr(training.RoundLogger, "__call__", original)
    state = json.loads((run / "checkpoints" / "resume.json").read_text())
    assert (state["phase"], state["rounds_done"]) == ("more", 7) and (run / "model.txt").read_text().count("Tree=") == 5
    ok(mltk("boost", "train", "--resume", run, "--num-rounds", "10", "--runs-dir", tmp_path, "-q"))
    assert (run / "model.txt").read_text().count("Tree=") == 10
    rounds = [json.loads(line)["round"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rounds == list(range(1, 11)) and not (run / "checkpoints" / "interrupted.txt").exists()


def test_train_tensorboard_writes_event_files(mltk, tmp_path):
    pytest.importorskip("tensorboard")
    example = tiny_example(tmp_path)
    summary = ok(mltk("boost", "train", *example.train_args, "--tensorboard", "--runs-dir", tmp_path, "-q")).json()
    assert list((Path(summary["run_dir"]) / "tb").glob("events.out.tfevents.*"))


def test_the_docs_python_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "docs" / "boost.md").read_text()
    section = text[text.index("## Python API") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", section.index("```python"))]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/boost.md", "exec"), {})
    assert (tmp_path / "runs" / "boost" / "tiny" / "eval.json").is_file()
