"""`mltk recommend` never crashes and never lies: bad options, data and files are one line and exit 3 (4 for
memory), refused before a run directory exists; requests for more than exists are capped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mltoolkit.recommend.synthetic import ratings_table
from tests.conftest import fails, ok


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    rows = ratings_table(users=120, items_per_group=15, per_user=8, seed=0)
    path.write_text("user,item,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, ratings_file) -> Path:
    from typer.testing import CliRunner

    from mltoolkit.cli import app

    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["recommend", "fit", str(ratings_file), "--runs-dir", str(runs), "-q"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout.strip().splitlines()[-1])["run_dir"])


def _refused(result, runs: Path, code: int, *fragments: str) -> None:
    """Exit ``code`` with a one-line message holding ``fragments``, nothing on stdout, no run directory."""
    fails(result, code, *fragments)
    assert result.stdout == ""
    assert not list(runs.rglob("config.json")), "a run directory was written"


@pytest.mark.parametrize(
    "options",
    [
        ["-m", "cosine", "--neighbours", "0"],  # segmentation fault
        ["-m", "bm25", "--neighbours", "-1"],
        ["--factors", "0"],  # BLAS errors on stdout, exit 0, every score 0
        ["--factors", "-1"],
        ["--iterations", "0"],
        ["--alpha", "-1"],
        ["--regularization", "-1"],
        ["-m", "ease", "--ease-lambda", "0"],
        ["-m", "ease", "--ease-lambda", "-1"],
        ["-m", "bpr", "--learning-rate", "-1"],
        ["--tune", "--tune-trials", "0"],
        ["--tune", "--tune-time", "0"],
        ["-k", "0"],
    ],
)
def test_meaningless_option_is_refused_before_a_run_exists(mltk, ratings_file, tmp_path, options):
    flag = next(o for o in options if o.startswith("-") and o not in ("-m", "--tune"))
    _refused(mltk("recommend", "fit", ratings_file, *options, "--runs-dir", tmp_path), tmp_path, 3, flag)


@pytest.mark.parametrize(
    ("rows", "fragments"),
    [
        ("a,x,5,1\nb,y,inf,2\na,y,2,3\nb,x,1,4\n", ["line 3", "rating", "'inf'"]),
        ("a,x,5,1\nb,y,4,-inf\na,y,2,3\nb,x,1,4\n", ["line 3", "timestamp", "'-inf'"]),
        ("a,x,5,1\nb,y,4,2\n", ["test split", "--test-fraction"]),  # KeyError: 'precision'
        ("a,x,-5,1\nb,y,-4,2\na,y,-1,3\nb,x,-2,4\nc,x,-1,5\n", ["0 positive"]),
    ],
)
def test_bad_ratings_are_refused_naming_the_problem(mltk, tmp_path, rows, fragments):
    path = tmp_path / "bad.csv"
    path.write_text("user,item,rating,timestamp\n" + rows)
    runs = tmp_path / "runs"
    _refused(mltk("recommend", "fit", path, "--runs-dir", runs), runs, 3, *fragments)


def test_negative_ratings_with_log_confidence_are_refused(mltk, tmp_path):
    path = tmp_path / "neg.csv"
    path.write_text("user,item,rating\na,x,5\nb,y,-4\na,y,2\nb,x,1\nc,x,3\nc,y,4\n")
    runs = tmp_path / "runs"
    _refused(mltk("recommend", "fit", path, "--confidence", "log", "--runs-dir", runs), runs, 3, "user b", "-4")


def test_overflowing_confidence_is_refused(mltk, ratings_file, tmp_path):
    _refused(mltk("recommend", "fit", ratings_file, "--alpha", "1e38", "--runs-dir", tmp_path), tmp_path, 3, "--alpha")


def test_a_fit_larger_than_available_memory_is_refused(mltk, ratings_file, tmp_path, monkeypatch):
    from mltoolkit.core import device

    monkeypatch.setattr(device, "available_memory", lambda: 5_000)
    fit = ("recommend", "fit", ratings_file, "--runs-dir", tmp_path)
    _refused(mltk(*fit), tmp_path, 3, "--factors 32 needs", "at most --factors 4 fits")
    _refused(mltk(*fit, "-m", "cosine"), tmp_path, 3, "--neighbours 20 needs", "at most --neighbours 10 fits")
    _refused(mltk(*fit, "-m", "ease", "--tune"), tmp_path, 3, "ease on 30 items needs", "catalogue of 12 items")


def test_diverging_bpr_is_a_config_error(mltk, ratings_file, tmp_path):
    fit = ("recommend", "fit", ratings_file, "-m", "bpr", "--learning-rate", "1000", "--iterations", "3")
    result = mltk(*fit, "--runs-dir", tmp_path)
    fails(result, 3, "diverged", "--learning-rate")


def test_more_threads_or_neighbours_than_exist_are_capped(mltk, ratings_file, tmp_path):
    fit = ("recommend", "fit", ratings_file, "--no-refit", "--runs-dir", tmp_path, "-q")
    ok(mltk(*fit, "--threads", "100000", "--iterations", "1"))  # segfaulted
    ok(mltk(*fit, "-m", "cosine", "--neighbours", "1000000000"))  # MemoryError: 31.5 GiB


def test_the_first_tune_trial_runs_whatever_the_time_budget(mltk, ratings_file, tmp_path):
    common = ["--runs-dir", tmp_path, "-m", "ease", "--tune", "--tune-time", "1e-9", "--name", "t"]
    ok(mltk("recommend", "fit", ratings_file, *common, "-q"))
    trials = [json.loads(x) for x in (tmp_path / "recommend" / "t" / "metrics.jsonl").read_text().splitlines()]
    assert [t["trial"] for t in trials if t["phase"] == "tune"] == [0]


def test_requests_for_more_than_exists_are_capped(mltk, run):
    """Never allocate for the number typed: 10**12 slots of int64 would be 8 TB."""
    rows = ok(mltk("recommend", "predict", run, "--users", "u0", "-n", "1000000000000")).stdout.splitlines()
    assert 1 < len(rows) <= 31
    similar = ok(mltk("recommend", "predict", run, "--similar-to", "g0-item1", "-n", "1000000000000"))
    assert len(similar.stdout.splitlines()) == 30  # the header and every other item
    history = ok(mltk("recommend", "predict", run, "--history", "g0-item1", "-n", "1000000000000"))
    assert 1 < len(history.stdout.splitlines()) <= 30
    result = ok(mltk("recommend", "evaluate", run, "-k", "1000000000000", "--format", "json")).json()
    assert result["metrics"]["recall@1000000000000"] == 1.0  # every held-out item is within the whole catalogue


def test_evaluate_refuses_k_0(mltk, run):
    fails(mltk("recommend", "evaluate", run, "-k", "0"), 3, "-k")


def _foreign_run(root: Path, technique: str, checkpoint: str) -> Path:
    run = root / technique / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"seed": 0}))
    (run / "summary.json").write_text(json.dumps({"technique": technique, "status": "completed"}))
    (run / "checkpoints" / checkpoint).write_bytes(b"\x00not a model")
    return run / "checkpoints" / checkpoint


@pytest.mark.parametrize(("technique", "checkpoint"), [("rl", "best.pt"), ("boost", "model.txt")])
@pytest.mark.parametrize("verb", ["predict", "evaluate"])
def test_another_techniques_run_is_refused(mltk, tmp_path, technique, checkpoint, verb):
    path = _foreign_run(tmp_path, technique, checkpoint)
    fails(mltk("recommend", verb, path, "--runs-dir", tmp_path), 3, f"'{technique}' run, not 'recommend'")


@pytest.mark.parametrize("content", [b"\xff\xfeu\x000\x00\n\x00", bytes(range(256)) * 8])
@pytest.mark.parametrize("option", [None, "--history"])
def test_garbage_or_utf16_input_files_are_refused(mltk, run, tmp_path, content, option):
    path = tmp_path / "users.txt"
    path.write_bytes(content)
    arguments = [option, path] if option else [path]
    fails(mltk("recommend", "predict", run, *arguments), 3, str(path))


def _damaged(run: Path, tmp_path: Path, file: str, damage) -> Path:
    copy = tmp_path / "recommend" / "copy"
    shutil.copytree(run, copy)
    target = copy / "checkpoints" / file
    target.write_bytes(damage(target.read_bytes()))
    return copy


def _rewritten(data: bytes, **changes) -> bytes:
    import io

    import numpy as np

    with np.load(io.BytesIO(data)) as arrays:
        kept = {k: arrays[k] for k in arrays.files}
    out = io.BytesIO()
    np.savez(out, **{k: v for k, v in {**kept, **changes}.items() if v is not None})
    return out.getvalue()


def _other_ids(data: bytes) -> bytes:
    import numpy as np

    return _rewritten(data, user_ids=np.asarray(["u0"]), item_ids=np.asarray(["x"]))


def _without_config(data: bytes) -> bytes:
    return _rewritten(data, config=None)


@pytest.mark.parametrize(
    ("file", "damage"),
    [
        ("model.npz", lambda data: data[: len(data) // 2]),  # truncated
        ("model.npz", lambda data: data[:100] + bytes(200) + data[300:]),  # overwritten in the middle
        ("model.npz", lambda data: b""),
        ("model.npz", _other_ids),  # another run's ids
        ("model.npz", _without_config),  # written before the npz held its config
    ],
)
def test_damaged_model_files_are_refused(mltk, run, tmp_path, file, damage):
    copy = _damaged(run, tmp_path, file, damage)
    fails(mltk("recommend", "predict", copy, "--users", "u0"), 3, file, "corrupt model file")


def test_damaged_split_is_refused(mltk, run, tmp_path):
    copy = _damaged(run, tmp_path, "split.npz", lambda data: data[: len(data) // 2])
    fails(mltk("recommend", "evaluate", copy), 3, "split.npz", "corrupt model file")


def test_temporal_test_split_holds_no_negative_rating():
    """A negative rating is not a hit to score: implicit's random split drops it, and so does the temporal one."""
    import numpy as np
    import scipy.sparse as sp

    from mltoolkit.recommend.split import split

    ratings = sp.csr_matrix(np.array([[5.0, 4.0, -3.0], [2.0, 0.0, 1.0]], dtype=np.float32))
    times = sp.csr_matrix(np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 2.0]]))
    _, test, _ = split(ratings, times, 0.34, "temporal", 0)
    assert test.toarray().tolist() == [[0, 0, 0], [0, 0, 1]]


def test_resume_with_another_model_starts_the_search_over(mltk, ratings_file, tmp_path):
    """The other model's trials are not replayed (they crashed with KeyError: 'factors')."""
    common = ["--runs-dir", tmp_path, "-q", "--tune", "--tune-trials", "2"]
    run = ok(mltk("recommend", "fit", ratings_file, *common, "-m", "ease", "--name", "t")).json()["run_dir"]
    ok(mltk("recommend", "fit", ratings_file, *common, "-m", "als", "--resume", run))
    rows = [json.loads(x) for x in (Path(run) / "metrics.jsonl").read_text().splitlines()]
    assert [(r["model"], r["trial"]) for r in rows if r["phase"] == "tune"] == [("als", 0), ("als", 1)]
    assert json.loads((Path(run) / "config.json").read_text())["model"] == "als"
