"""`mltk boost` overhead at scale: a 1M-row x 50-column CSV, mltk vs a plain pandas + LightGBM script.

Both sides run as fresh processes (imports included) with the same parameters and thread count,
interleaved, and the medians over ``--repeats`` are compared:
- train: read the CSV + 200 boosting rounds (mltk: ``mltk boost train``; plain: ``pd.read_csv(engine="pyarrow")``
  + ``lightgbm.train``), target ratio mltk/plain <= 1.10;
- predict: score the same file to a CSV of label + probabilities, target ratio <= 1.00.

    .venv/bin/python benchmarks/boost_scale.py [--rows 1000000] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PLAIN_TRAIN = """
import sys, pandas as pd, lightgbm as lgb
data, model, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
frame = pd.read_csv(data, engine="pyarrow")
label = frame.pop("target")
params = {"objective": "binary", "learning_rate": 0.1, "num_leaves": 31, "num_threads": threads, "verbose": -1}
booster = lgb.train(params, lgb.Dataset(frame, label), num_boost_round=200)
booster.save_model(model)
"""

PLAIN_PREDICT = """
import sys, numpy as np, pandas as pd, lightgbm as lgb
data, model, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
frame = pd.read_csv(data, engine="pyarrow").drop(columns=["target"])
proba = lgb.Booster(model_file=model).predict(frame, num_threads=threads)
pd.DataFrame({"prediction": (proba > 0.5).astype(int), "proba_0": 1 - proba, "proba_1": proba}).to_csv(out, index=False)
"""


def make_csv(path: Path, rows: int, columns: int) -> None:
    """A binary target and ``columns - 1`` float features with 5 decimals (~0.4 GB for 1M x 50)."""
    import pyarrow as pa
    import pyarrow.csv as pc

    rng = np.random.default_rng(0)
    X = np.round(rng.standard_normal((rows, columns - 1)), 5)
    y = (X[:, :5].sum(axis=1) + X[:, 5] * X[:, 6] + rng.standard_normal(rows) > 0).astype(np.int64)
    table = pa.table({"target": y, **{f"f{i}": X[:, i] for i in range(columns - 1)}})
    pc.write_csv(table, path, write_options=pc.WriteOptions(quoting_style="none"))


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="1 gives the steadiest ratios on a shared box")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    python, mltk = sys.executable, str(Path(sys.executable).with_name("mltk"))
    threads = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="boost-scale-") as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "big.csv"
        make_csv(data, args.rows, args.columns)
        print(f"data: {args.rows} rows x {args.columns} columns, {data.stat().st_size / 1e6:.0f} MB; threads {threads}")
        times: dict[str, list[float]] = {"mltk train": [], "plain train": [], "mltk predict": [], "plain predict": []}
        mltk_train = [mltk, "boost", "train", str(data), "--target", "target", "--num-rounds", "200",
                      "--learning-rate", "0.1", "--num-leaves", "31", "--valid-fraction", "0",
                      "--early-stopping", "0", "--task", "binary", "--threads", threads, "--quiet",
                      "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
        for repeat in range(args.repeats):
            name = f"r{repeat}"
            plain_model = tmp_path / f"plain{repeat}.txt"
            order = ["mltk", "plain"] if repeat % 2 == 0 else ["plain", "mltk"]
            for side in order:
                if side == "mltk":
                    times["mltk train"].append(timed([*mltk_train, "--name", name]))
                else:
                    times["plain train"].append(
                        timed([python, "-c", PLAIN_TRAIN, str(data), str(plain_model), threads])
                    )
            for side in order:
                if side == "mltk":
                    run = str(tmp_path / "runs" / "boost" / name)
                    out = str(tmp_path / "mltk_pred.csv")
                    command = [
                        mltk,
                        "boost",
                        "predict",
                        run,
                        str(data),
                        "--proba",
                        "--threads",
                        threads,
                        "-o",
                        out,
                        "-q",
                    ]
                    times["mltk predict"].append(timed(command))
                else:
                    command = [
                        python,
                        "-c",
                        PLAIN_PREDICT,
                        str(data),
                        str(plain_model),
                        str(tmp_path / "p.csv"),
                        threads,
                    ]
                    times["plain predict"].append(timed(command))
            print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
        same = _same_predictions(tmp_path / "mltk_pred.csv", tmp_path / "p.csv")
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"\nmedian over {args.repeats} (interleaved), load: {os.getloadavg()[0]:.2f}")
        for key, value in median.items():
            print(f"  {key:14s} {value:7.2f} s")
        train_ratio = median["mltk train"] / median["plain train"]
        predict_ratio = median["mltk predict"] / median["plain predict"]
        verdict = {True: "met", False: "NOT met"}
        print(f"train   ratio mltk/plain {train_ratio:.3f}  (target <= 1.10: {verdict[train_ratio <= 1.10]})")
        print(f"predict ratio mltk/plain {predict_ratio:.3f}  (target <= 1.00: {verdict[predict_ratio <= 1.0]})")
        print(f"last repeat's probabilities agree (max abs diff): {same:.2e}")


def _same_predictions(mltk_csv: Path, plain_csv: Path) -> float:
    import pandas as pd

    ours, theirs = pd.read_csv(mltk_csv), pd.read_csv(plain_csv)
    return float(np.abs(ours["proba_1"].to_numpy() - theirs["proba_1"].to_numpy()).max())


if __name__ == "__main__":
    main()
