"""`mltk boost`: what it refuses (one line, exit 3, nothing written) and what it must not lose or lie about."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import fails, ok

QUICK = ["--num-rounds", "10", "--threads", "1", "--quiet"]


@pytest.fixture
def table(tmp_path):
    """A small binary table: two numeric features, one text feature, a weight and a text column."""
    rng = np.random.default_rng(0)
    n = 120
    x1 = rng.normal(size=n)
    frame = pd.DataFrame({"x1": x1, "x2": rng.normal(size=n), "color": rng.choice(["red", "blue"], size=n)})
    frame["w"] = rng.uniform(0.5, 2.0, size=n)
    frame["plan"] = rng.choice(["basic", "pro"], size=n)
    frame["y"] = (x1 + rng.normal(scale=0.5, size=n) > 0).astype(int)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return path


def _train(mltk, tmp_path, data, *extra):
    return ok(mltk("boost", "train", data, "--target", "y", *QUICK, "--runs-dir", tmp_path / "runs", *extra)).json()


def _refused(mltk, tmp_path, data, *flags, fragments):
    runs = tmp_path / "refused"
    fails(mltk("boost", "train", data, *flags, *QUICK, "--runs-dir", runs), 3, *fragments)
    assert not runs.exists() or not any(runs.rglob("config.json")), "a refused input left a run directory"


# --- damaged model files: checked before LightGBM reads them (it aborts the process on them) ---------------


@pytest.fixture(scope="module")
def model_text(tmp_path_factory):
    """The bytes of a real model.txt (trained once for the damage tests)."""
    from mltoolkit import boost

    root = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200)})
    frame["y"] = (frame.x1 > 0).astype(int)
    frame.to_csv(root / "d.csv", index=False)
    config = boost.Config(data=str(root / "d.csv"), target="y", num_rounds=10, threads=1, valid_fraction=0)
    return (boost.train(config, runs_dir=root / "runs").run_dir / "model.txt").read_bytes()


DAMAGES = {
    "head -c 3000": lambda text: 3000,
    "cut at a tree boundary": lambda text: text.index(b"Tree=3\n"),
    "no end of trees": lambda text: text.index(b"end of trees"),
    "cut in its parameters": lambda text: text.index(b"[learning_rate:"),  # LightGBM segfaulted
    "cut in its last line": lambda text: len(text) - 4,
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_model_file_is_refused_before_lightgbm_reads_it(tmp_path, model_text, damage):
    from mltoolkit.boost.booster import load_booster
    from mltoolkit.core.errors import DataError

    path = tmp_path / "model.txt"
    path.write_bytes(model_text[: DAMAGES[damage](model_text)])
    with pytest.raises(DataError, match="corrupt model file"):
        load_booster(path)
    path.write_bytes(model_text)
    assert load_booster(path).num_trees() == 10


def test_predict_on_a_damaged_model_is_exit_3_not_an_abort(mltk, tmp_path, table):
    """Through the CLI, in a child process: LightGBM aborted (SIGABRT) with its warnings on stdout."""
    run = _train(mltk, tmp_path, table)["run_dir"]
    model = tmp_path / "runs" / "boost" / "t" / "model.txt"
    model.write_bytes(model.read_bytes()[:3000])
    command = [sys.executable, "-m", "mltoolkit", "boost", "predict", run, str(table)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, (result.returncode, result.stderr[-2000:])
    assert result.stdout == "" and result.stderr.count("\n") == 1 and "corrupt model file" in result.stderr


@pytest.mark.parametrize("schema", ['{"task": "binary"}', "[1, 2]"])
def test_a_damaged_schema_is_exit_3(mltk, tmp_path, table, schema):
    run = _train(mltk, tmp_path, table)["run_dir"]
    (tmp_path / "runs" / "boost" / "t" / "schema.json").write_text(schema)
    fails(mltk("boost", "predict", run, table), 3, "schema.json", "damaged schema")


def test_lightgbm_log_goes_to_stderr_not_stdout(mltk, tmp_path, table):
    flags = ["--target", "y", "--num-rounds", "5", "--threads", "1", "--param", "verbose=1"]  # not --quiet
    result = ok(mltk("boost", "train", table, *flags, "--runs-dir", tmp_path / "runs"))
    assert "[LightGBM]" in result.stderr
    assert len(result.stdout.strip().splitlines()) == 1 and "run_dir" in result.json(), result.stdout[:500]


# --- columns, parameters and files that cannot mean what was asked ---------------------------------------


def test_weight_naming_a_text_column_is_exit_3(mltk, tmp_path, table):
    _refused(mltk, tmp_path, table, "--target", "y", "--weight", "plan", fragments=["'plan'", "row 1", "not a number"])


@pytest.mark.parametrize("option", ["--drop", "--weight", "--group"])
def test_an_option_naming_the_target_is_exit_3(mltk, tmp_path, table, option):
    _refused(mltk, tmp_path, table, "--target", "y", option, "y", fragments=[option, "'y'", "target"])


def test_an_unknown_lightgbm_parameter_is_exit_3_naming_it(mltk, tmp_path, table):
    _refused(
        mltk, tmp_path, table, "--target", "y", "--param", "foo=bar", fragments=["'foo'", "not a LightGBM parameter"]
    )
    _refused(mltk, tmp_path, table, "--target", "y", "-p", "num_leafs=8", fragments=["'num_leafs'", "num_leaves"])
    conf = tmp_path / "train.conf"
    conf.write_text(f"data = {table}\nlabel = name:y\nnum_trees = 5\nbagging_fractions = 0.5\n")
    fragments = ["train.conf", "'bagging_fractions'", "bagging_fraction"]
    _refused(mltk, tmp_path, "--lightgbm-config", conf, fragments=fragments)


def test_aliases_of_lightgbm_parameters_are_accepted(mltk, tmp_path, table):
    out = _train(mltk, tmp_path, table, "--param", "min_child_samples=5", "-p", "sub_feature=0.8", "--no-refit")
    config = json.loads((tmp_path / "runs/boost/t/config.json").read_text())
    assert out["task"] == "binary" and config["params"] == ["min_child_samples=5", "sub_feature=0.8"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("label = y\n".encode("utf-16"), "not a UTF-8 text file"),
        (bytes(range(256)) * 4, "not a UTF-8 text file"),
        (b"lorem ipsum\n", "expected 'key = value'"),
    ],
)
def test_a_garbage_or_utf16_lightgbm_config_is_exit_3(mltk, tmp_path, content, fragment):
    conf = tmp_path / "train.conf"
    conf.write_bytes(content)
    _refused(mltk, tmp_path, "--lightgbm-config", conf, fragments=[fragment])


def test_a_lightgbm_config_sets_the_run_and_typed_flags_win(mltk, tmp_path, table):
    conf = tmp_path / "train.conf"
    conf.write_text(f"task = train\ndata = {table.name}\nlabel = name:y\nnum_trees = 7\nobjective = binary\n")
    out = ok(mltk("boost", "train", "--lightgbm-config", conf, "--threads", "1", "--quiet",
                  "--runs-dir", tmp_path / "runs")).json()  # fmt: skip
    assert out["task"] == "binary" and out["best_round"] == 7
    out = ok(mltk("boost", "train", "--lightgbm-config", conf, "--num-rounds", "3", "--threads", "1", "--quiet",
                  "--runs-dir", tmp_path / "runs")).json()  # fmt: skip
    assert out["best_round"] == 3


def test_a_run_of_another_technique_is_exit_3(mltk, tmp_path, table):
    other = tmp_path / "runs" / "rl" / "cartpole"
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.json").write_text("{}")
    (other / "summary.json").write_text(json.dumps({"technique": "rl", "status": "completed"}))
    (other / "checkpoints" / "last.pt").write_bytes(b"\x80\x02torch")
    for run in (other / "checkpoints" / "last.pt", other):
        fails(mltk("boost", "predict", run, table, "--runs-dir", tmp_path / "runs"), 3, "'rl' run")
        fails(mltk("boost", "evaluate", run, table, "--runs-dir", tmp_path / "runs"), 3, "'rl' run")


# --- non-finite numbers: inf is refused naming row and column; an empty cell stays a missing value ---------


@pytest.mark.parametrize("column", ["x1", "y", "w"])
def test_infinity_in_a_feature_label_or_weight_column_is_exit_3(mltk, tmp_path, table, column):
    frame = pd.read_csv(table)
    frame[column] = frame[column].astype(float)
    frame.loc[6, column] = -np.inf
    path = tmp_path / "inf.csv"
    frame.to_csv(path, index=False)
    flags = ["--target", "y", "--task", "regression", "--weight", "w"]
    _refused(mltk, tmp_path, path, *flags, fragments=[f"'{column}'", "row 7", "-inf", "not a finite number"])


@pytest.mark.parametrize("side", ["weight", "init"])
def test_infinity_in_a_weight_or_init_side_file_is_exit_3(mltk, tmp_path, table, side):
    values = np.zeros(120) + 1.0
    values[9] = np.inf
    np.savetxt(f"{table}.{side}", values)
    _refused(mltk, tmp_path, table, "--target", "y", fragments=[f"t.csv.{side}", "line 10", "not a finite number"])


def test_infinity_in_libsvm_input_is_exit_3(mltk, tmp_path):
    lines = [f"{i % 2} 0:{i} 1:{i * 0.5}" for i in range(40)]
    lines[4] = "1 0:inf 1:2"
    path = tmp_path / "s.svm"
    path.write_text("\n".join(lines) + "\n")
    _refused(mltk, tmp_path, path, fragments=["line 5", "infinite"])


def test_empty_cells_stay_missing_values(mltk, tmp_path, table):
    frame = pd.read_csv(table)
    frame.loc[3:10, "x1"] = np.nan
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    run = _train(mltk, tmp_path, path, "--weight", "w")["run_dir"]
    assert len(ok(mltk("boost", "predict", run, path)).stdout.splitlines()) == 121


def test_predict_names_the_row_of_the_whole_input_not_of_its_chunk(mltk, tmp_path, table):
    from mltoolkit import boost
    from mltoolkit.boost.score import write_predictions
    from mltoolkit.core.errors import DataError

    run = _train(mltk, tmp_path, table)["run_dir"]
    frame = pd.read_csv(table)
    frame.loc[99, "x2"] = np.inf
    path = tmp_path / "score.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="column 'x2' row 100: inf"):
        write_predictions(boost.load(run), str(path), output=tmp_path / "out.csv", chunk_rows=32)
    assert not (tmp_path / "out.csv").exists()


# --- resume: no round lost -----------------------------------------------------------------------------


def test_resume_after_ctrl_c_in_lightgbm_loses_no_round_and_refuses_a_changed_model(mltk, tmp_path, table, monkeypatch):
    """Ctrl-C most often lands in LightGBM's native update: the tree of round 12 exists, its metrics row not."""
    import lightgbm

    flags = ["--target", "y", "--num-rounds", "20", "--early-stopping", "0", "--no-refit", "--seed", "1"]
    original = lightgbm.Booster.update

    def interrupted_in_round_12(self, *args, **kwargs):
        done = original(self, *args, **kwargs)
        if self.current_iteration() == 12:
            raise KeyboardInterrupt
        return done

    monkeypatch.setattr(lightgbm.Booster, "update", interrupted_in_round_12)
    runs = tmp_path / "runs"
    assert mltk("boost", "train", table, *flags, *QUICK[2:], "--runs-dir", runs).exit_code == 130
    monkeypatch.setattr(lightgbm.Booster, "update", original)
    fails(mltk("boost", "train", "--resume", "latest", "--learning-rate", "0.3", "--runs-dir", runs), 2,
          "--learning-rate cannot change")  # fmt: skip
    fails(mltk("boost", "train", "--resume", "latest", "--num-rounds", "11", "--runs-dir", runs), 3, "11 rounds")
    ok(mltk("boost", "train", "--resume", "latest", "--num-rounds", "25", "--runs-dir", runs, "--quiet"))
    rounds = [row["round"] for row in map(json.loads, (runs / "boost/t/metrics.jsonl").read_text().splitlines())]
    assert rounds == list(range(1, 26))  # round 12 included, and the new total honoured
    assert (runs / "boost/t/model.txt").read_text().count("Tree=") == 25


@pytest.mark.parametrize(("damaged", "content"), [("interrupted.txt", b"tree\nversion=v4\n"), ("resume.json", b"[]")])
def test_resuming_from_a_damaged_checkpoint_is_exit_3(mltk, tmp_path, table, monkeypatch, damaged, content):
    from mltoolkit.boost import training

    original = training.RoundLogger.__call__

    def interrupt_at_round_5(self, env):
        original(self, env)
        if env.iteration + 1 == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.RoundLogger, "__call__", interrupt_at_round_5)
    runs = tmp_path / "runs"
    flags = ["--target", "y", "--valid-fraction", "0", *QUICK]
    assert mltk("boost", "train", table, *flags, "--runs-dir", runs).exit_code == 130
    monkeypatch.setattr(training.RoundLogger, "__call__", original)
    (runs / "boost" / "t" / "checkpoints" / damaged).write_bytes(content)
    before = (runs / "boost" / "t" / "summary.json").read_text()
    fails(mltk("boost", "train", "--resume", "latest", "--runs-dir", runs), 3, damaged)
    assert (runs / "boost" / "t" / "summary.json").read_text() == before, "refused, yet the run was reopened"
