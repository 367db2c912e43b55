"""`mltk recommend`: end to end on a synthetic table with two planted taste groups."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mltoolkit.recommend.synthetic import ratings_table
from tests.conftest import args, fails, ok

MOVIELENS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k" / "u.data"


def _csv(rows, header=("user", "item", "rating", "timestamp")) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture(scope="module")
def table() -> list[tuple[str, str, int, int]]:
    return ratings_table(users=120, items_per_group=15, per_user=8, seed=0)


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory, table) -> Path:
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    path.write_text(_csv(table))
    return path


@pytest.fixture(scope="module")
def als_run(tmp_path_factory, ratings_file) -> Path:
    """One ALS run shared by the predict tests (fitting is the slow part)."""
    from typer.testing import CliRunner

    from mltoolkit.cli import app

    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["recommend", "fit", str(ratings_file), "--runs-dir", str(runs), "-q"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout.strip().splitlines()[-1])["run_dir"])


def _records(stdout: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(stdout)))


def _seen(table, user: str) -> set[str]:
    return {item for u, item, _, _ in table if u == user}


def test_fit_writes_run_and_beats_popularity(als_run):
    summary = json.loads((als_run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["model"] == "als"
    for name in ("config.json", "env.json", "metrics.jsonl", "summary.json"):
        assert (als_run / name).is_file(), name
    assert (als_run / "plots" / "metrics.png").stat().st_size > 1000
    for name in ("model.npz", "model-eval.npz", "split.npz"):
        assert (als_run / "checkpoints" / name).is_file(), name
    config = json.loads((als_run / "config.json").read_text())
    assert config["factors"] == 32 and config["regularization"] == 30.0  # resolved defaults recorded
    lines = [json.loads(line) for line in (als_run / "metrics.jsonl").read_text().splitlines()]
    model, popularity = (r for r in lines if r["phase"] == "test")
    # 3 seeds x 1 and 2 threads: NDCG@10 0.521-0.566, popularity 0.206-0.216 (margin >= 0.305)
    assert model["ndcg@10"] > popularity["ndcg@10"] + 0.2


def test_predict_into_a_closed_pipe_ends_quietly(als_run):
    """`mltk recommend predict RUN | head -1`: exit 0 and nothing on stderr once the reader has left."""
    command = [sys.executable, "-m", "mltoolkit", "recommend", "predict", str(als_run), "-n", "30", "--format", "jsonl"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout.readline().startswith(b"{")
        process.stdout.close()  # ~150 KB still to come: more than the pipe holds
        assert process.wait(timeout=120) == 0
        assert process.stderr.read() == b""


def test_predict_recommends_in_group_unseen_items(mltk, als_run, table):
    records = _records(ok(mltk("recommend", "predict", als_run, "--users", "u0,u1", "-n", "5")).stdout)
    assert len(records) == 10 and list(records[0]) == ["user", "rank", "item", "score"]
    for record in records:
        group = int(record["user"][1:]) % 2
        assert record["item"].startswith(f"g{group}-"), record
        assert record["item"] not in _seen(table, record["user"])
    assert [r["rank"] for r in records[:5]] == ["1", "2", "3", "4", "5"]
    scores = [float(r["score"]) for r in records[:5]]
    assert scores == sorted(scores, reverse=True)


def test_include_seen_keeps_rated_items(mltk, als_run, table):
    records = _records(ok(mltk("recommend", "predict", als_run, "--users", "u0", "-n", "15", "--include-seen")).stdout)
    assert _seen(table, "u0") & {r["item"] for r in records}


def test_users_from_stdin_and_jsonl(mltk, als_run):
    result = ok(mltk("recommend", "predict", als_run, "-", "--format", "jsonl", "-n", "2", input="user\nu3\nu4\n"))
    rows = result.jsonl()
    assert [r["user"] for r in rows] == ["u3", "u3", "u4", "u4"]
    assert all(r["item"].startswith(f"g{int(r['user'][1:]) % 2}-") for r in rows)


def test_unknown_user_falls_back_or_fails_with_strict(mltk, als_run):
    result = ok(mltk("recommend", "predict", als_run, "--users", "nobody", "-n", "3"))
    assert "unknown user 'nobody'" in result.stderr and len(_records(result.stdout)) == 3
    fails(mltk("recommend", "predict", als_run, "--users", "nobody", "--strict"), 3, "nobody")


def test_new_user_history_with_explain(mltk, als_run):
    history = "g1-item0,g1-item1,g1-item2,g1-item3"
    result = ok(
        mltk("recommend", "predict", als_run, "--history", history, "-n", "4", "--explain", "--format", "jsonl")
    )
    rows = result.jsonl()
    assert len(rows) == 4 and all(r["user"] == "new" for r in rows)
    assert all(r["item"].startswith("g1-") and r["item"] not in history.split(",") for r in rows)
    assert all(set(r["because"]) <= set(history.split(",")) and r["because"] for r in rows)


def test_history_table_and_similar_items(mltk, als_run, tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("user,item\nnew0,g0-item1\nnew0,g0-item2\nnew1,g1-item4\nnew1,g1-item5\n")
    rows = _records(ok(mltk("recommend", "predict", als_run, "--history", path, "-n", "3")).stdout)
    assert {r["user"] for r in rows} == {"new0", "new1"}
    assert all(r["item"].startswith("g0-" if r["user"] == "new0" else "g1-") for r in rows)
    similar = _records(ok(mltk("recommend", "predict", als_run, "--similar-to", "g0-item3", "-n", "3")).stdout)
    assert len(similar) == 3 and all(r["similar"].startswith("g0-") and r["similar"] != "g0-item3" for r in similar)


def test_evaluate_reports_both_precisions_beside_popularity(mltk, als_run):
    result = ok(mltk("recommend", "evaluate", als_run, "--format", "json")).json()
    assert result["model"] == "als" and "min(k" in result["precision_definition"]
    for key in ("precision@10", "precision_implicit@10", "recall@10", "map@10", "ndcg@10", "auc", "coverage"):
        assert key in result["metrics"] and key in result["popularity"]
    assert result["metrics"]["ndcg@10"] > result["popularity"]["ndcg@10"] + 0.2  # measured margin >= 0.305
    assert json.loads((als_run / "eval.json").read_text())["metrics"] == result["metrics"]


def test_stdin_fit_alias_ease_knn_and_evaluate_on_new_data(mltk, table, tmp_path):
    text = _csv(table)
    for model in ("ease", "cosine"):
        summary = ok(mltk("recommend", "fit", "-", "-m", model, "--runs-dir", tmp_path, "-q", input=text)).json()
        # 3 seeds x 1 and 2 threads: ease 0.525-0.567, cosine 0.529-0.559; popularity 0.206-0.216
        assert summary["model"] == model and summary["headline"]["value"] > 0.45
        history = "g0-item0,g0-item1,g0-item2"
        rows = ok(mltk("recommend", "predict", summary["run_dir"], "--history", history, "-n", "3", "--explain",
                       "--format", "jsonl")).jsonl()  # fmt: skip
        assert all(r["item"].startswith("g0-") and r["item"] not in history for r in rows)
        assert all(r["because"] and set(r["because"]) <= set(history.split(",")) for r in rows)
    later = tmp_path / "later.csv"
    later.write_text(_csv([("u0", "g0-item0", 5, 0), ("u1", "g1-item0", 5, 0), ("zz", "g0-item1", 5, 0)]))
    result = ok(mltk("recommend", "evaluate", "latest", later, "--runs-dir", tmp_path, "--format", "json"))
    assert result.json()["data"] == str(later) and "dropped" in result.stderr


def test_a_table_whose_name_has_a_space_fits_without_a_name(mltk, ratings_file, tmp_path):
    spaced = tmp_path / "my ratings.csv"
    spaced.write_text(ratings_file.read_text())
    summary = ok(mltk("recommend", "fit", spaced, "-m", "popularity", "--runs-dir", tmp_path / "runs", "-q")).json()
    assert summary["run_dir"] == str(tmp_path / "runs" / "recommend" / "popularity-my-ratings")


@pytest.mark.parametrize("model", ["bpr", "bm25", "tfidf", "popularity"])
def test_other_models_fit_and_predict(mltk, ratings_file, tmp_path, model):
    extra = args(iterations=30) if model == "bpr" else []
    summary = ok(mltk("recommend", "train", ratings_file, "-m", model, "--runs-dir", tmp_path, "-q", *extra)).json()
    assert summary["headline"]["value"] is not None
    rows = _records(ok(mltk("recommend", "predict", summary["run_dir"], "--users", "u0", "-n", "3")).stdout)
    assert len(rows) == 3


def test_tune_searches_on_validation_and_resume_skips_done_trials(mltk, ratings_file, tmp_path):
    common = ["--runs-dir", tmp_path, "-q", "-m", "ease", "--tune", "--tune-trials", "3"]
    summary = ok(mltk("recommend", "fit", ratings_file, *common, "--name", "t")).json()
    run = Path(summary["run_dir"])
    trials = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"tune"' in x]
    assert [t["trial"] for t in trials] == [0, 1, 2] and all("ease_lambda" in t for t in trials)
    chosen = json.loads((run / "config.json").read_text())["ease_lambda"]
    assert chosen == max(trials, key=lambda t: t["val_ndcg"])["ease_lambda"]
    assert (run / "plots" / "tune.png").is_file()
    # the run's config (model, --tune) is reloaded: only what changes is typed
    resumed = ok(mltk("recommend", "fit", ratings_file, "--runs-dir", tmp_path, "--tune-trials", "4", "--resume", run))
    assert "3 trials already done" in resumed.stderr
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"tune"' in x]
    assert [t["trial"] for t in lines] == [0, 1, 2, 3] and resumed.json()["run_dir"] == str(run)


def test_temporal_split_and_headerless_columns(mltk, table, tmp_path):
    path = tmp_path / "ratings.tsv"
    path.write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in table))
    result = ok(mltk("recommend", "fit", path, "--columns", "user,item,rating,timestamp", "--split", "temporal",
                     "--runs-dir", tmp_path, "--no-refit"))  # fmt: skip
    # 3 seeds x 1 and 2 threads: NDCG@10 0.461-0.472; popularity 0.192 on this split
    assert "temporal split" in result.stderr and result.json()["headline"]["value"] > 0.35
    fails(mltk("recommend", "fit", path, "--columns", "user,item", "--runs-dir", tmp_path), 3, "4 columns")


def test_duplicates_and_min_rating(tmp_path):
    from mltoolkit.recommend.data import ColumnSpec, load_interactions

    path = tmp_path / "d.csv"
    path.write_text("user,item,rating,time\na,x,1,5\na,x,4,3\nb,y,2,1\nb,x,5,2\n")
    summed = load_interactions(str(path), ColumnSpec())
    assert summed.ratings[0, 0] == 5.0 and list(summed.users) == ["a", "b"]
    last = load_interactions(str(path), ColumnSpec(), duplicates="last")
    assert last.ratings[0, 0] == 1.0  # time 5 is the latest
    kept = load_interactions(str(path), ColumnSpec(), min_rating=2)
    assert kept.ratings.nnz == 3 and kept.ratings[0, 0] == 4.0


def test_metrics_match_implicit(ratings_file):
    import scipy.sparse as sp
    from implicit.evaluation import ranking_metrics_at_k

    from mltoolkit.recommend.config import MODEL_DEFAULTS
    from mltoolkit.recommend.data import ColumnSpec, confidence, load_interactions
    from mltoolkit.recommend.metrics import ranking_metrics
    from mltoolkit.recommend.models import build_model, limit_blas
    from mltoolkit.recommend.split import split

    ratings = load_interactions(str(ratings_file), ColumnSpec()).ratings
    train, test, _ = split(ratings, None, 0.2, "random", 3)
    user_items = confidence(train, "linear", 1.0)
    limit_blas("als", 1)
    model = build_model("als", MODEL_DEFAULTS["als"], 1, 0)
    model.fit(user_items)
    ids, _ = model.recommend(np.arange(user_items.shape[0]), user_items, 10)
    mine = ranking_metrics(ids, test, 10)
    theirs = ranking_metrics_at_k(model.model, user_items, sp.csr_matrix(test), K=10, show_progress=False)
    for ours, key in (("precision_implicit", "precision"), ("map", "map"), ("ndcg", "ndcg"), ("auc", "auc")):
        assert mine[ours] == pytest.approx(theirs[key], abs=1e-9)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("customer_name,product\na,x\nb,y\n", ["no user column", "--user-col"]),
        ("user,sku\na,x\nb,y\n", ["no item column"]),
        ("user,item,rating\na,x,5\nb,y,great\n", ["line 3", "rating", "'great'"]),
        ("", ["empty"]),
        ("user,item,rating\na,x,5\na,y,4\n", ["only 1 distinct user"]),
        ("user,item,rating\na,x,5\nb,x,4\n", ["only 1 distinct item"]),
        ("user,item\na,x\n,y\n", ["line 3", "empty user"]),
    ],
)
def test_bad_input_is_exit_3_naming_line_or_column(mltk, tmp_path, content, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    fails(mltk("recommend", "fit", path, "--runs-dir", tmp_path), 3, *fragments)


def test_bad_options(mltk, ratings_file, tmp_path, als_run):
    fails(mltk("recommend", "fit", ratings_file, "--user-col", "who", "--runs-dir", tmp_path), 3, "'who'")
    fails(mltk("recommend", "fit", ratings_file, "-m", "svd", "--runs-dir", tmp_path), 3, "svd")
    fails(mltk("recommend", "fit", ratings_file, "--split", "temporal", "--time-col", "rating",
               "--test-fraction", "1.5", "--runs-dir", tmp_path), 3, "--test-fraction")  # fmt: skip
    fails(mltk("recommend", "fit", ratings_file, "--device", "cuda", "--runs-dir", tmp_path), 4, "CUDA")
    assert mltk("recommend", "predict", als_run, "--users", "u0", "--similar-to", "x").exit_code == 2
    untimed = tmp_path / "untimed.csv"
    untimed.write_text("user,item\na,x\nb,y\na,y\n")
    fails(mltk("recommend", "fit", untimed, "--split", "temporal", "--runs-dir", tmp_path / "r"), 3, "timestamp")
    fails(
        mltk("recommend", "fit", untimed, "--tune", "--test-fraction", "0", "--runs-dir", tmp_path / "r"), 3, "--tune"
    )
    assert not (tmp_path / "r").exists()  # refused before a run directory was made


@pytest.mark.skipif(not MOVIELENS.is_file(), reason="MovieLens-100K not in ../shared/data")
def test_movielens_defaults_reach_target(mltk, tmp_path):
    """The issue's quality bar: default settings, implicit's split (seed 42), NDCG@10 >= 0.42.

    Measured with 1 and 2 threads: 0.4454 (seed 42; seeds 0 and 1: 0.4402, 0.4512); popularity 0.214.
    """
    summary = ok(mltk("recommend", "fit", MOVIELENS, "--seed", "42", "--no-refit", "--runs-dir", tmp_path, "-q")).json()
    assert summary["headline"]["value"] >= 0.42


def test_interrupted_tune_is_marked_and_resumes(mltk, ratings_file, tmp_path, monkeypatch):
    from mltoolkit.recommend import training

    real, calls = training.fit_and_score, []

    def interrupt_on_fifth(*a, **k):  # trials fit two validation folds each: the 5th call is trial 2
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(training, "fit_and_score", interrupt_on_fifth)
    common = ["--runs-dir", tmp_path, "-m", "ease", "--tune", "--tune-trials", "4", "--name", "i"]
    fails(mltk("recommend", "fit", ratings_file, *common, "-q"), 130, "interrupted")
    run = tmp_path / "recommend" / "i"
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(training, "fit_and_score", real)
    result = ok(mltk("recommend", "fit", ratings_file, "--runs-dir", tmp_path, "--resume", run))  # no flags again
    assert "2 trials already done" in result.stderr
    trials = [json.loads(x)["trial"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"tune"' in x]
    assert trials == [0, 1, 2, 3]
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "ease" and config["tune"] and config["tune_trials"] == 4


def test_n_larger_than_catalogue_lists_each_unseen_item_once(mltk, als_run, table):
    records = _records(ok(mltk("recommend", "predict", als_run, "--users", "u0", "-n", "100")).stdout)
    items = [r["item"] for r in records]
    assert len(items) == len(set(items)) == 30 - len(_seen(table, "u0"))


def test_confidence_scalings():
    import scipy.sparse as sp

    from mltoolkit.recommend.data import confidence

    ratings = sp.csr_matrix(np.array([[0, 4.0], [1.0, 0]], dtype=np.float32))
    assert confidence(ratings, "linear", 0.5).data.tolist() == [3.0, 1.5]
    assert confidence(ratings, "binary", 2.0).data.tolist() == [3.0, 3.0]
    assert confidence(ratings, "log", 1.0).data == pytest.approx(1 + np.log1p([4.0, 1.0]))
