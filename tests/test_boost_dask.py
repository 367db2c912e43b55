"""`mltk boost ... --dask`: train and score on a LocalCluster of 2 processes x 1 thread, on Parquet parts made here.

One cluster serves the whole module (started once); each command connects to it by address. The
test that kills a worker mid-training runs last, as it leaves the cluster with a restarted worker.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

from tests.conftest import fails, ok

pytest.importorskip("distributed")

FAST = ["--threads", "1", "--quiet", "--learning-rate", "0.1", "--num-rounds", "150", "--seed", "1"]
PARTS = 4


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.CRITICAL
        ) as local,
        Client(local) as client,
    ):
        yield client


def _table(n: int, seed: int, colors: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(colors, size=n)
    score = x1 + 0.5 * x2 + np.where(color == "red", 1.5, 0.0) + rng.normal(scale=0.5, size=n)
    return pd.DataFrame(
        {"id": [f"s{seed}-{i}" for i in range(n)], "x1": x1, "x2": x2, "color": color, "value": score,
         "label": np.where(score > 0.4, "yes", "no")}
    )  # fmt: skip


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Four binary/regression parts (the last has a colour the others lack), a holdout, and all in one file."""
    folder = tmp_path_factory.mktemp("parts")
    colors = [["red", "green", "blue"]] * (PARTS - 1) + [["red", "green", "teal"]]
    frames = [_table(1500, i, colors[i]) for i in range(PARTS)]
    for i, frame in enumerate(frames):
        frame.to_parquet(folder / f"part-{i}.parquet")
    pd.concat(frames).to_parquet(folder / "all.parquet")
    _table(2000, 99, ["red", "green", "blue", "teal"]).to_parquet(folder / "holdout.parquet")
    return folder


def _train(mltk, tmp_path, data, *extra):
    return ok(mltk("boost", "train", data, "--runs-dir", tmp_path / "runs", *FAST, *extra)).json()


def _metrics(mltk, run, data):
    return ok(mltk("boost", "evaluate", run, data, "--format", "json")).json()


def _arrow_allocator() -> str:
    import pyarrow as pa

    return pa.default_memory_pool().backend_name


def test_binary_schema_quality_and_predict_without_dask(mltk, tmp_path, parts, cluster):
    address = cluster.scheduler.address
    binary = ["--target", "label", "--id", "id", "--drop", "value"]
    out = _train(mltk, tmp_path, parts / "part-*.parquet", *binary, "--dask", address)
    run = out["run_dir"]
    assert out["task"] == "binary" and out["validation"] == "0.2 split"
    schema = json.loads((tmp_path / "runs/boost/part-0/schema.json").read_text())
    assert schema["classes"] == ["no", "yes"]
    assert schema["features"][2]["levels"] == ["blue", "green", "red", "teal"]  # levels of every part
    import lightgbm as lgb  # the model file is plain LightGBM

    assert lgb.Booster(model_file=f"{run}/model.txt").num_feature() == 3
    assert json.loads((tmp_path / "runs/boost/part-0/summary.json").read_text())["status"] == "completed"
    assert len((tmp_path / "runs/boost/part-0/metrics.jsonl").read_text().splitlines()) > 1
    assert set(cluster.run(_arrow_allocator).values()) == {"system"}  # freed Parquet pages go back to the OS
    single = _train(mltk, tmp_path, parts / "all.parquet", *binary)["run_dir"]
    dask_auc = _metrics(mltk, run, parts / "holdout.parquet")["auc"]
    single_auc = _metrics(mltk, single, parts / "holdout.parquet")["auc"]
    assert dask_auc > 0.85 and abs(dask_auc - single_auc) < 0.02, (dask_auc, single_auc)

    glob = str(parts / "part-*.parquet")
    scattered = ok(mltk("boost", "predict", run, glob, "--proba", "--dask", address)).stdout
    one_by_one = [
        pd.read_csv(io.StringIO(ok(mltk("boost", "predict", run, parts / f"part-{i}.parquet", "--proba")).stdout))
        for i in range(PARTS)
    ]
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(scattered)), pd.concat(one_by_one, ignore_index=True))
    ok(mltk("boost", "predict", run, glob, "--dask", address, "--output", tmp_path / "scored"))
    assert sorted(p.name for p in (tmp_path / "scored").iterdir()) == [f"part-{i}.csv" for i in range(PARTS)]
    assert len(pd.read_csv(tmp_path / "scored/part-2.csv")) == 1500


def test_regression_close_to_one_machine(mltk, tmp_path, parts, cluster):
    regression = ["--target", "value", "--drop", "label", "--id", "id", "--no-refit"]
    run = _train(mltk, tmp_path, parts / "part-*.parquet", *regression, "--dask", cluster.scheduler.address)
    assert run["task"] == "regression"
    single = _train(mltk, tmp_path, parts / "all.parquet", *regression)
    dask_l2 = _metrics(mltk, run["run_dir"], parts / "holdout.parquet")["l2"]
    single_l2 = _metrics(mltk, single["run_dir"], parts / "holdout.parquet")["l2"]
    # features as float64 on the workers, as in one process: seeds 1-3 gave -0.12%, +0.06% and 0.00%
    assert abs(dask_l2 / single_l2 - 1) < 0.01, (dask_l2, single_l2)


def _ranking_parts(folder, split_group: bool = False) -> None:
    rng = np.random.default_rng(3)
    for part in range(2):
        queries = np.repeat(np.arange(part * 60, (part + 1) * 60), 10)
        x = rng.normal(size=(len(queries), 3))
        relevance = np.clip(np.round(x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=len(queries)) + 1), 0, 3)
        frame = pd.DataFrame({"query": queries, "a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "rel": relevance})
        if split_group and part == 1:
            frame.loc[:4, "query"] = 0  # query 0 also has rows in part 0
        frame.sample(frac=1, random_state=part).to_parquet(folder / f"rank-{part}.parquet")  # rows not grouped


def test_ranking_with_groups(mltk, tmp_path, cluster):
    _ranking_parts(tmp_path)
    out = _train(mltk, tmp_path, tmp_path / "rank-*.parquet", "--target", "rel", "--group", "query",
                 "--dask", cluster.scheduler.address)  # fmt: skip
    assert out["task"] == "lambdarank" and out["valid"]["ndcg@5"] > 0.7
    metrics = _metrics(mltk, out["run_dir"], tmp_path / "rank-1.parquet")
    assert metrics["ndcg@5"] > 0.7


def test_ranking_group_split_over_parts_is_refused(mltk, tmp_path, cluster):
    _ranking_parts(tmp_path, split_group=True)
    result = mltk("boost", "train", tmp_path / "rank-*.parquet", "--target", "rel", "--group", "query",
                  "--dask", cluster.scheduler.address, "--runs-dir", tmp_path / "runs")  # fmt: skip
    fails(result, 3, "rank-0.parquet", "rank-1.parquet", "query group 0")
    assert not (tmp_path / "runs").exists()


def test_glob_matching_nothing(mltk, tmp_path, cluster):
    result = mltk("boost", "train", tmp_path / "none-*.parquet", "--target", "y", "--dask", cluster.scheduler.address)
    fails(result, 3, "none-*.parquet", "matches no data files")


def test_parts_whose_columns_disagree(mltk, tmp_path, cluster):
    _table(200, 0, ["red"]).to_parquet(tmp_path / "p-0.parquet")
    _table(200, 1, ["red"]).rename(columns={"x2": "x3"}).to_parquet(tmp_path / "p-1.parquet")
    result = mltk("boost", "train", tmp_path / "p-*.parquet", "--target", "label",
                  "--dask", cluster.scheduler.address, "--runs-dir", tmp_path / "runs")  # fmt: skip
    fails(result, 3, "p-1.parquet", "'x2'")


def test_unreachable_scheduler(mltk, tmp_path, parts, monkeypatch):
    from mltoolkit.boost import distributed

    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT_S", 1)
    result = mltk("boost", "train", parts / "part-*.parquet", "--target", "label", "--dask", "tcp://127.0.0.1:9")
    fails(result, 4, "tcp://127.0.0.1:9")


@pytest.mark.parametrize("memory", ["lots", "nan", "-1GB"])
def test_local_memory_limit_that_is_not_a_size(mltk, tmp_path, parts, memory):
    result = mltk("boost", "train", parts / "part-*.parquet", "--target", "label", "--dask", f"local:1:{memory}",
                  "--runs-dir", tmp_path / "runs")  # fmt: skip
    fails(result, 2, f"memory limit '{memory}' is not a size")
    assert not (tmp_path / "runs").exists()


def test_missing_extra_says_how_to_install(mltk, parts, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    result = mltk("boost", "train", parts / "part-*.parquet", "--target", "label", "--dask", "local:2")
    fails(result, 4, "pip install 'mltk[dask]'")


def test_python_api_result_and_model_file_alone_as_on_one_machine(mltk, tmp_path, parts, cluster):
    """boost.train(Config(dask=...)) -> TrainResult with one machine's summary; model.txt (schema line and all)
    loads alone, and predict --dask prints the records of boost.load(...).predict; --resume is refused."""
    import shutil

    from mltoolkit import boost
    from mltoolkit.boost.cli import PRINTED

    config = boost.Config(data=str(parts / "part-*.parquet"), target="label", id=["id"], drop=["value"],
                          num_rounds=20, early_stopping=0, refit=False, seed=1, threads=1,
                          dask=cluster.scheduler.address)  # fmt: skip
    result = boost.train(config, runs_dir=tmp_path / "runs")
    run = result.run_dir
    assert result.status == "completed" and result.headline["metric"] == "valid_auc"
    assert result.summary == json.loads((run / "summary.json").read_text())
    assert result.summary["technique"] == "boost" and result.summary["best_checkpoint"] == "model.txt"
    assert {"task", "validation", "best_round", "valid", "wall_time_s"} <= set(result.summary) & set(PRINTED)
    assert result.summary["best"]["round"] == result.summary["final"]["rounds"] == result.summary["best_round"] == 20
    assert json.loads((run / "config.json").read_text())["dask"] == cluster.scheduler.address
    assert "mltk_schema:" in (run / "model.txt").read_text()
    alone = tmp_path / "elsewhere" / "model.txt"
    alone.parent.mkdir()
    shutil.copy(run / "model.txt", alone)
    records = pd.read_parquet(parts / "part-3.parquet").head(50).drop(columns=["value", "label"])
    expected = boost.load(run, threads=1).predict(records.to_dict("records"), proba=True, explain=True)
    assert boost.load(alone, threads=1).predict(records.to_dict("records"), proba=True, explain=True) == expected
    records.to_parquet(tmp_path / "rows.parquet")
    printed = ok(mltk("boost", "predict", alone, tmp_path / "rows.parquet", "--proba", "--explain", "--format",
                      "jsonl", "--dask", cluster.scheduler.address)).jsonl()  # fmt: skip
    assert printed == expected and {"id", "prediction", "proba_yes", "contrib_color"} <= set(printed[0])
    resumed = mltk("boost", "train", "--resume", run, "--num-rounds", "30", "--runs-dir", tmp_path / "runs")
    fails(resumed, 2, "--resume is not available with --dask")


def test_workers_bin_features_as_one_machine(cluster):
    """The bins every worker trains with are the ones one process finds for the whole table: LightGBM's
    own sample (same rows, same seed), the whole table's row count for feature_pre_filter (a rare
    feature is dropped alike), a categorical column; so one machine's model comes out tree for tree."""
    import lightgbm as lgb

    from mltoolkit.boost.distributed import _bin_sample, shared_bins
    from mltoolkit.boost.prepare import Prepared

    rng = np.random.default_rng(0)
    X = np.round(rng.standard_normal((5000, 5)) * 64) / 64  # exact in float32, as workers hold features
    X[rng.random(5000) < 0.1, 0] = np.nan
    X[:, 1] = np.where(rng.random(5000) < 0.995, 0.0, X[:, 1])  # kept or dropped by the rows' count
    X[:, 4] = rng.integers(0, 7, 5000)
    y = (X[:, 2] + X[:, 3] + rng.normal(size=5000) > 0).astype(float)
    params = {"objective": "binary", "verbose": -1, "seed": 3, "bin_construct_sample_cnt": 700, "num_threads": 1}
    ends = [0, 1200, 3100, 5000]
    parts = [Prepared(np.asfortranarray(X[a:b], dtype=np.float32), y[a:b]) for a, b in zip(ends, ends[1:])]
    sample, total = _bin_sample(cluster, cluster.scatter(parts), params)
    bins = shared_bins(np.concatenate(cluster.gather(sample)), total, params, [4])
    workers = lgb.Dataset([p.X for p in parts], label=y, params=params, reference=bins).construct()
    one = lgb.Dataset(X, label=y, params=params, categorical_feature=[4]).construct()
    assert [workers.feature_num_bin(i) for i in range(5)] == [one.feature_num_bin(i) for i in range(5)]
    assert one.feature_num_bin(1) == 0  # the rare feature: filtered on both sides
    trees = [lgb.train(params, d, 10).model_to_string().split("Tree=0")[1].split("feature_importances")[0]
             for d in (workers, one)]  # fmt: skip
    assert trees[0] == trees[1]


def test_features_float64_unless_a_worker_would_be_crowded():
    from mltoolkit.boost.distributed import feature_dtype

    class Scheduler:
        def __init__(self, limit: float) -> None:
            self.limit = limit

        def scheduler_info(self) -> dict:
            return {"workers": {name: {"memory_limit": self.limit} for name in ("a", "b")}}

    assert feature_dtype(Scheduler(4e9), 34_000_000, 20) is np.float32  # the benchmark's 6 GB on two 4 GB workers
    assert feature_dtype(Scheduler(4e9), 1_000_000, 50) is np.float64
    assert feature_dtype(Scheduler(0), 34_000_000, 20) is np.float64  # no limit: as one process


def test_worker_dying_mid_training_fails_the_run(mltk, tmp_path, parts, cluster):
    """Runs last: SIGKILL one worker once LightGBM trains; exit 4, run marked failed, no model written."""
    pids = cluster.run(os.getpid)

    def kill_when_training() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any("_fit_on_worker" in str(key) for keys in cluster.processing().values() for key in keys):
                time.sleep(1.0)  # let LightGBM connect its workers first
                os.kill(pids[sorted(pids)[-1]], signal.SIGKILL)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_training, daemon=True)
    killer.start()
    result = mltk("boost", "train", parts / "part-*.parquet", "--target", "label", "--drop", "id",
                  "--num-rounds", "1000000", "--early-stopping", "0", "--valid-fraction", "0", "--quiet",
                  "--dask", cluster.scheduler.address, "--runs-dir", tmp_path / "runs")  # fmt: skip
    killer.join()
    fails(result, 4, "Dask worker failed during training", "marked failed")
    run = tmp_path / "runs/boost/part-0"
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    assert not (run / "model.txt").exists() and not (run / "schema.json").exists()
