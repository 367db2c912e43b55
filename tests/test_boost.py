"""`mltk boost`: end-to-end CLI runs on small synthetic tables made here, one per task, plus bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import fails, ok

FAST = ["--num-rounds", "40", "--threads", "1", "--quiet", "--learning-rate", "0.2"]


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    score = x1 + 0.5 * x2 + np.where(color == "red", 1.5, 0.0) + rng.normal(scale=0.3, size=n)
    return pd.DataFrame(
        {"id": [f"r{i}" for i in range(n)], "x1": x1, "x2": x2, "color": color, "value": score,
         "label": np.where(score > 0.4, "yes", "no"), "level": np.digitize(score, [-0.5, 0.5, 1.5])}
    )  # fmt: skip


def _rates(seed: int, n: int = 400) -> pd.DataFrame:
    """A 0/1 outcome drawn with probability sigmoid(2 x1 + x2): a unit-interval target judged by L2."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    outcome = (rng.random(n) < 1 / (1 + np.exp(-(2 * x1 + x2)))).astype(float)
    return pd.DataFrame({"x1": x1, "x2": x2, "outcome": outcome})


def _queries(seed: int, queries: int = 60) -> pd.DataFrame:
    """Eight documents per query; relevance 0-3 rises with x1, x2 is noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for query in range(queries):
        for _ in range(8):
            x = rng.normal(size=2)
            rows.append({"query": f"q{query}", "x1": x[0], "x2": x[1], "rel": int(np.clip(x[0] * 1.5 + 1.5, 0, 3))})
    return pd.DataFrame(rows)


@pytest.fixture
def binary_csv(tmp_path):
    path = tmp_path / "train.csv"
    _frame().drop(columns=["value", "level"]).to_csv(path, index=False)
    return path


def _train(mltk, tmp_path, data, *extra):
    return ok(mltk("boost", "train", data, "--runs-dir", tmp_path / "runs", *FAST, *extra)).json()


def _csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_binary_string_labels_roundtrip(mltk, tmp_path, binary_csv):
    out = _train(mltk, tmp_path, binary_csv, "--target", "label", "--id", "id")
    run = out["run_dir"]
    assert out["task"] == "binary" and out["valid"]["auc"] > 0.9 and "CV" in out["validation"]
    for name in (
        "model.txt",
        "schema.json",
        "metrics.jsonl",
        "summary.json",
        "importance.json",
        "plots/importance.png",
    ):
        assert (tmp_path / "runs" / "boost" / "train" / name).exists(), name
    schema = json.loads((tmp_path / "runs/boost/train/schema.json").read_text())
    assert schema["classes"] == ["no", "yes"] and schema["features"][2]["levels"] == ["blue", "green", "red"]
    import lightgbm as lgb  # the native model file loads in LightGBM itself

    assert lgb.Booster(model_file=f"{run}/model.txt").num_feature() == 3
    held_out = tmp_path / "held_out.csv"
    _frame(300, 10).drop(columns=["value", "level"]).to_csv(held_out, index=False)
    metrics = ok(mltk("boost", "evaluate", run, held_out, "--format", "json")).json()
    assert metrics["auc"] > 0.9 and set(metrics) >= {"log_loss", "accuracy", "f1", "confusion_matrix"}
    predicted = _csv(ok(mltk("boost", "predict", run, binary_csv, "--proba")).stdout)
    assert list(predicted.columns) == ["id", "prediction", "proba_no", "proba_yes"]
    assert set(predicted["prediction"]) == {"yes", "no"}
    assert np.allclose(predicted["proba_no"] + predicted["proba_yes"], 1)


def test_categorical_levels_in_other_order_and_reordered_columns(mltk, tmp_path, binary_csv):
    run = _train(mltk, tmp_path, binary_csv, "--target", "label", "--id", "id")["run_dir"]
    frame = pd.read_csv(binary_csv)
    expected = _csv(ok(mltk("boost", "predict", run, binary_csv, "--proba")).stdout)
    # Only two levels, first seen in another order, columns shuffled, an extra column: same predictions.
    subset = frame[frame["color"] != "green"].iloc[::-1]
    shuffled = subset[["color", "x2", "id", "x1"]].assign(extra=1.0)
    result = mltk("boost", "predict", run, "-", "--proba", input=shuffled.to_csv(index=False))
    got = _csv(ok(result).stdout).set_index("id")
    want = expected.set_index("id").loc[got.index]
    assert np.allclose(got["proba_yes"], want["proba_yes"]) and "extra" in result.stderr


def test_unseen_category_is_missing_with_warning(mltk, tmp_path, binary_csv):
    run = _train(mltk, tmp_path, binary_csv, "--target", "label")["run_dir"]
    table = pd.read_csv(binary_csv).head(5).assign(color="purple")
    result = ok(mltk("boost", "predict", run, "-", input=table.to_csv(index=False)))
    assert "purple" in result.stderr and len(_csv(result.stdout)) == 5


def test_missing_feature_column_is_exit_3(mltk, tmp_path, binary_csv):
    run = _train(mltk, tmp_path, binary_csv, "--target", "label")["run_dir"]
    table = pd.read_csv(binary_csv).drop(columns=["x2", "color"])
    fails(mltk("boost", "predict", run, "-", input=table.to_csv(index=False)), 3, "x2", "color")


def test_multiclass_jsonl_stdin_and_stdout(mltk, tmp_path):
    frame = _frame(400, 1).drop(columns=["value", "label", "id"])
    data = "\n".join(json.dumps(r) for r in frame.to_dict("records")) + "\n"
    flags = ["--target", "level", "--no-refit", "--runs-dir", tmp_path / "runs"]  # one split, no refit
    out = ok(mltk("boost", "train", "-", *flags, *FAST, input=data))
    assert out.json()["task"] == "multiclass" and out.json()["validation"] == "0.2 split"
    run = out.json()["run_dir"]
    records = ok(mltk("boost", "predict", run, "-", "--format", "jsonl", "--proba", input=data)).jsonl()
    assert len(records) == 400 and {r["prediction"] for r in records} <= {0, 1, 2, 3}
    assert abs(sum(v for k, v in records[0].items() if k.startswith("proba_")) - 1) < 1e-9
    held_out = _frame(400, 11).drop(columns=["value", "label", "id"])  # the majority class is 28% of it
    held_out = "\n".join(json.dumps(r) for r in held_out.to_dict("records")) + "\n"
    metrics = ok(mltk("boost", "evaluate", run, "-", "--format", "json", input=held_out)).json()
    assert metrics["accuracy"] > 0.7 and len(metrics["confusion_matrix"]) == 4


def test_regression_with_cv_and_explain_sums_to_raw_score(mltk, tmp_path):
    path = tmp_path / "reg.parquet"
    _frame(300, 2).drop(columns=["label", "level", "id"]).to_parquet(path)
    flags = ["--target", "value", "--cv", "3", "--valid", path, "--runs-dir", tmp_path / "runs"]
    out = ok(mltk("boost", "train", path, *flags, *FAST)).json()
    assert out["task"] == "regression" and out["cv"]["l2"]["std"] >= 0 and out["validation"].startswith("--valid")
    held_out = tmp_path / "held_out.parquet"
    _frame(300, 12).drop(columns=["label", "level", "id"]).to_parquet(held_out)
    assert ok(mltk("boost", "evaluate", out["run_dir"], held_out, "--format", "json")).json()["r2"] > 0.85
    explained = _csv(ok(mltk("boost", "predict", out["run_dir"], path, "--explain")).stdout)
    contributions = explained[[c for c in explained.columns if c.startswith("contrib_")]]
    assert list(contributions.columns) == ["contrib_x1", "contrib_x2", "contrib_color", "contrib_bias"]
    assert np.allclose(contributions.sum(axis=1), explained["prediction"])


def test_tune_chooses_the_loss_for_a_unit_interval_target(mltk, tmp_path):
    path, held_out = tmp_path / "rate.csv", tmp_path / "held_out.csv"
    _rates(5).to_csv(path, index=False)
    _rates(15).to_csv(held_out, index=False)
    flags = ["--target", "outcome", "--task", "regression", "--tune", "--tune-trials", "3", "--threads", "1"]
    result = ok(mltk("boost", "train", path, *flags, "--runs-dir", tmp_path / "runs"))
    trials = [line for line in result.stderr.splitlines() if line.startswith("trial ")]
    assert len(trials) == 3 and "'regression'" in trials[0] and "'cross_entropy'" in trials[1], trials
    out = result.json()
    assert set(out["tuned_params"]) == {"objective", "num_leaves", "learning_rate"}
    predictions = _csv(ok(mltk("boost", "predict", out["run_dir"], path)).stdout)["prediction"]
    metrics = ok(mltk("boost", "evaluate", out["run_dir"], held_out, "--format", "json")).json()
    assert metrics["r2"] > 0.25 and (
        predictions.between(0, 1).all() or out["tuned_params"]["objective"] == "regression"
    )
    # a loss the user chose is kept
    chosen = ok(mltk("boost", "train", path, *flags, "--param", "objective=huber", "--runs-dir", tmp_path / "runs"))
    assert "cross_entropy" not in chosen.stderr and chosen.json()["tuned_params"]["objective"] == "huber"


def test_ranking_with_group_column(mltk, tmp_path):
    frame = _queries(3).sample(frac=1, random_state=0)  # groups interleaved: mltk sorts them
    path, held_out = tmp_path / "rank.csv", tmp_path / "held_out.csv"
    frame.to_csv(path, index=False)
    _queries(13).to_csv(held_out, index=False)
    out = _train(mltk, tmp_path, path, "--target", "rel", "--group", "query")
    assert out["task"] == "lambdarank"
    metrics = ok(mltk("boost", "evaluate", out["run_dir"], held_out, "--format", "json")).json()
    assert metrics["ndcg@5"] > 0.9 and "map@3" in metrics  # random order: 0.54
    scores = _csv(ok(mltk("boost", "predict", out["run_dir"], path)).stdout)["prediction"]
    assert np.corrcoef(scores, frame["x1"])[0, 1] > 0.8  # one score per input row, in input order


def test_lightgbm_formats_with_side_files(mltk, tmp_path):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    np.savetxt(tmp_path / "d.train", np.column_stack([y, X]), delimiter="\t", fmt="%.6g")
    np.savetxt(tmp_path / "d.train.weight", np.full(200, 2.0))
    out = _train(mltk, tmp_path, tmp_path / "d.train")  # headerless: the label is column 0
    assert out["task"] == "binary"
    lines = [f"{label} " + " ".join(f"{j}:{v:.4f}" for j, v in enumerate(row) if j != 1) for label, row in zip(y, X)]
    (tmp_path / "s.train").write_text("\n".join(lines) + "\n")
    (tmp_path / "s.train.query").write_text("100\n100\n")
    out = _train(mltk, tmp_path, tmp_path / "s.train")
    assert out["task"] == "lambdarank"
    fails(mltk("boost", "predict", out["run_dir"], tmp_path / "d.train"), 3, "LibSVM")


def test_init_scores_go_through_the_objectives_link(mltk, tmp_path):
    """With .init files mltk adds them to the raw score itself: the output must match LightGBM's own."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * X[:, 0]))).astype(float)
    np.savetxt(tmp_path / "d.train", np.column_stack([y, X]), delimiter="\t", fmt="%.6g")
    np.savetxt(tmp_path / "d.train.init", rng.normal(scale=0.5, size=300))
    flags = ["--task", "regression", "--param", "objective=cross_entropy", "--valid", tmp_path / "d.train"]
    out = _train(mltk, tmp_path, tmp_path / "d.train", *flags, "--no-refit")
    metrics = ok(mltk("boost", "evaluate", out["run_dir"], tmp_path / "d.train", "--format", "json")).json()
    assert metrics["l2"] == pytest.approx(out["valid"]["l2"], rel=1e-9)  # LightGBM's l2 on the same rows


def test_deterministic_is_identical_across_thread_counts(mltk, tmp_path, binary_csv):
    models = []
    for threads in ("1", "2"):
        flags = ["--deterministic", "--seed", "3", "--num-rounds", "20", "--threads", threads, "--quiet"]
        out = ok(mltk("boost", "train", binary_csv, "--target", "label", *flags, "--runs-dir", tmp_path / "runs"))
        model = open(f"{out.json()['run_dir']}/model.txt").read()
        models.append(model.split("parameters:")[0])  # the trees; the parameter dump names the threads
    assert models[0] == models[1]


@pytest.mark.parametrize(
    ("table", "flags", "fragments"),
    [
        ("a,b\n1,2\n3,4\n", ["--target", "c"], ["no target column 'c'"]),
        ("a,b\n", ["--target", "a"], ["no rows"]),
        ("", ["--target", "a"], ["empty input"]),
        ("a,b\n1,x\n2,x\n", ["--target", "b"], ["single class"]),
        ("a,b\n1,2\n3,x\n", ["--target", "b"], ["--valid-fraction", "no rows to train"]),
        ("a,b\n1,2\n3,4\n", ["--target", "b", "--num-rounds", "0"], ["--num-rounds must be >= 1"]),
        ("a,b\n1,2\n3,4\n", ["--target", "b", "--valid-fraction", "1.5"], ["--valid-fraction must be"]),
        ("a,b\n1,2\n3,4\n", ["--target", "b", "--tune", "--tune-trials", "0"], ["--tune-trials must be"]),
        ("a,b\n1,2\n3,4\n", ["--target", "b", "--cv", "1"], ["--cv must be 0 (off) or at least 2"]),
    ],
)
def test_bad_training_input_is_exit_3(mltk, tmp_path, table, flags, fragments):
    fails(mltk("boost", "train", "-", *flags, "--runs-dir", tmp_path, "--quiet", input=table), 3, *fragments)
    assert not list(tmp_path.glob("boost/*")), "a refused table left a run directory behind"


def test_non_numeric_value_names_column_and_row(mltk, tmp_path, binary_csv):
    frame = pd.read_csv(binary_csv)
    bad = frame.astype({"x1": object})
    bad.loc[7, "x1"] = "oops"
    fails(mltk("boost", "train", "-", "--target", "label", "--runs-dir", tmp_path, input=bad.to_csv(index=False)),
          3, "'x1'", "row 8", "oops")  # fmt: skip
    run = _train(mltk, tmp_path, binary_csv, "--target", "label")["run_dir"]
    fails(mltk("boost", "predict", run, "-", input=bad.to_csv(index=False)), 3, "'x1'", "row 8")


def test_cuda_is_exit_4_and_bad_param_exit_3(mltk, tmp_path, binary_csv):
    fails(mltk("boost", "train", binary_csv, "--target", "label", "--device", "cuda", "--runs-dir", tmp_path), 4)
    fails(mltk("boost", "train", binary_csv, "--target", "label", "--param", "nonsense", "--runs-dir", tmp_path), 3)


def test_interrupted_run_resumes_to_the_same_model(mltk, tmp_path, binary_csv, monkeypatch):
    from mltoolkit.boost import training

    flags = ["--target", "label", "--valid-fraction", "0", "--num-rounds", "30", "--threads", "1", "--quiet"]
    whole = ok(mltk("boost", "train", binary_csv, *flags, "--runs-dir", tmp_path / "a")).json()["run_dir"]
    original = training.RoundLogger.__call__

    def interrupt_at_round_12(self, env):
        original(self, env)
        if env.iteration + 1 == 12:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.RoundLogger, "__call__", interrupt_at_round_12)
    assert mltk("boost", "train", binary_csv, *flags, "--runs-dir", tmp_path / "b").exit_code == 130
    run = tmp_path / "b" / "boost" / "train"
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(training.RoundLogger, "__call__", original)
    ok(mltk("boost", "train", "--resume", run, "--runs-dir", tmp_path / "b", "--quiet"))
    trees = [(path / "model.txt").read_text().split("parameters:")[0] for path in (Path(whole), run)]
    assert trees[0].count("Tree=") == trees[1].count("Tree=") == 30
    assert _same_scores(mltk, whole, run, binary_csv)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    fails(mltk("boost", "train", "--resume", run, "--runs-dir", tmp_path / "b"), 3, "already has 30 rounds")


def _same_scores(mltk, run_a, run_b, data) -> bool:
    a = _csv(ok(mltk("boost", "predict", run_a, data, "--proba")).stdout)
    b = _csv(ok(mltk("boost", "predict", run_b, data, "--proba")).stdout)
    return bool(np.allclose(a["proba_yes"], b["proba_yes"], atol=1e-9))


def test_tune_imports_no_training_and_searches_with_any_evaluate():
    """tune.search scores candidates through the callable it is given: no LightGBM, no import of training."""
    import subprocess
    import sys

    code = "import sys, mltoolkit.boost.tune; print('mltoolkit.boost.training' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    from mltoolkit.boost import tune

    labels = []

    def evaluate(candidate, label):
        labels.append(label)
        loss = abs(candidate["num_leaves"] - 8) + candidate.get("lambda_l2", 0.0)
        return {"metric": "l2", "scores": {"l2": loss}, "round": 10, "curve": [], "std": {}}

    best = tune.search({"objective": "regression"}, evaluate, trials=9, seed=0, objectives=["cross_entropy"])
    assert labels == [f"trial {n}" for n in range(1, 10)]
    assert best["params"]["num_leaves"] == 8 and best["value"] == 0 and best["params"]["objective"] == "regression"


def test_options_keep_their_names_and_layer_over_a_config_file(mltk, tmp_path, binary_csv):
    (tmp_path / "c.yaml").write_text("num_rounds: 7\nlearning_rate: 0.3\nparams: [lambda_l2=1]\n")
    flags = ["--target", "label", "--id", "id", "--drop", "x2", "--drop", "color,", "-p", "min_data_in_leaf=5"]
    flags += ["--config", tmp_path / "c.yaml", "--learning-rate", "0.2", "--no-refit", "--threads", "1", "--quiet"]
    run = ok(mltk("boost", "train", binary_csv, *flags, "--runs-dir", tmp_path / "runs")).json()["run_dir"]
    config = json.loads((Path(run) / "config.json").read_text())
    assert (config["id"], config["drop"], config["num_rounds"], config["learning_rate"]) == (
        ["id"],
        ["x2", "color"],
        7,
        0.2,
    )
    assert config["params"] == ["lambda_l2=1", "min_data_in_leaf=5"] and config["data"] == str(binary_csv.absolute())
