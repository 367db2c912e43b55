"""`mltk boost` on LightGBM's four examples vs raw LightGBM: test metric and time, in one process.

For each example (../shared/data/lightgbm, or --data):
- raw: ``lightgbm.train`` on LightGBM's own file parser with the ``train.conf`` parameters (what the
  LightGBM CLI computes), test metric from LightGBM's evaluation on ``valid_data``;
- mltk conf: ``mltk boost train --lightgbm-config train.conf`` then ``evaluate`` on the test file
  (target: the same metric to 1e-6);
- mltk defaults: early stopping on a 20% split of the training file (target: at least as good as conf);
- mltk --tune (with --tune): random search on a split of the training data (targets from the issue).
Times are medians of --repeats interleaved runs, same thread count on both sides.
With --seeds N, a second table gives medians over seeds 0..N-1 of raw (LightGBM's bagging and
feature-fraction draws), defaults and --tune (fold splits and draws): test sets of 500 rows make a
single figure a lottery ticket, so this shows where each side usually lands.

    .venv/bin/python benchmarks/boost_examples.py [--threads 1] [--repeats 3] [--tune] [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

EXAMPLES = {  # folder: (train file, test file, task for the defaults, metrics, tune target, init scores in tune)
    "binary_classification": ("binary.train", "binary.test", "auto", ["auc"], 0.840, True),
    "regression": ("regression.train", "regression.test", "regression", ["l2"], 0.166, False),
    "multiclass_classification": ("multiclass.train", "multiclass.test", "auto", ["multi_logloss"], 0.85, True),
    "lambdarank": ("rank.train", "rank.test", "auto", ["ndcg@1", "ndcg@3", "ndcg@5"], 0.676, True),
}
HIGHER = ("auc", "ndcg")


def raw_lightgbm(folder: Path, threads: int, seed: int | None = None) -> tuple[dict[str, float], float]:
    """The LightGBM CLI's computation through its Python API: its parser, the conf's parameters."""
    import lightgbm as lgb

    from mltoolkit.boost.data import parse_value, read_lightgbm_config
    from mltoolkit.boost.params import aliases, is_cli_only

    conf = read_lightgbm_config(folder / "train.conf")
    files = {*aliases("data"), *aliases("valid")}
    params = {k: parse_value(v) for k, v in conf.items() if not is_cli_only(k) and k not in files}
    params.update(verbose=-1, num_threads=threads)
    if seed is not None:
        params["seed"] = seed
    start = time.perf_counter()
    train = lgb.Dataset(str(folder / conf["data"]), params=params)
    valid = lgb.Dataset(str(folder / conf["valid_data"]), reference=train)
    history: dict = {}
    lgb.train(params, train, valid_sets=[valid], valid_names=["test"], callbacks=[lgb.record_evaluation(history)])
    elapsed = time.perf_counter() - start
    return {k: float(v[-1]) for k, v in history["test"].items()}, elapsed


def mltk_run(
    folder: Path, runs: Path, threads: int, mode: str, task: str, init: bool, seed: int | None = None
) -> tuple[dict, float]:
    from mltoolkit import boost
    from mltoolkit.boost.params import config_from_lightgbm
    from mltoolkit.core.config import build_config

    train_file, test_file = EXAMPLES[folder.name][:2]
    if mode == "conf":
        cfg = build_config(boost.Config, config_from_lightgbm(folder / "train.conf"), {"threads": threads})
    else:
        flags = {"data": str(folder / train_file), "task": task, "threads": threads, "tune": mode == "tune"}
        if seed is not None:
            flags["seed"] = seed
        cfg = build_config(boost.Config, flags, {"init_score": init})
    start = time.perf_counter()
    result = boost.train(cfg, runs_dir=runs, name=f"{folder.name}-{mode}")
    elapsed = time.perf_counter() - start
    return boost.evaluate(result.run_dir, str(folder / test_file), threads=threads), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LGB_DATA", "../shared/data/lightgbm")))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tune", action="store_true", help="also run --tune (minutes)")
    parser.add_argument("--seeds", type=int, default=0, help="also medians over this many seeds")
    parser.add_argument("--examples", nargs="+", choices=list(EXAMPLES), default=list(EXAMPLES))
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: LightGBM example data not found (pass --data)")
    from mltoolkit.core.console import set_quiet

    set_quiet(True)
    rows, seeded = [], []
    with tempfile.TemporaryDirectory(prefix="boost-examples-") as tmp:
        for name in args.examples:
            _, _, task, metrics, target, init = EXAMPLES[name]
            folder = args.data / name
            raw_times, mltk_times = [], []
            for _ in range(args.repeats):  # interleaved
                raw, elapsed = raw_lightgbm(folder, args.threads)
                raw_times.append(elapsed)
                ours, elapsed = mltk_run(folder, Path(tmp), args.threads, "conf", task, True)
                mltk_times.append(elapsed)
            defaults, default_time = mltk_run(folder, Path(tmp), args.threads, "default", task, True)
            diff = max(abs(ours[m] - raw[m]) for m in metrics)
            for metric in metrics:
                better = (
                    (defaults[metric] >= raw[metric]) if metric.startswith(HIGHER) else defaults[metric] <= raw[metric]
                )
                row = {"example": name, "metric": metric, "raw": raw[metric], "mltk_conf": ours[metric],
                       "max_abs_diff": diff, "raw_s": statistics.median(raw_times),
                       "mltk_conf_s": statistics.median(mltk_times), "defaults": defaults[metric],
                       "defaults_ok": better, "defaults_s": default_time}  # fmt: skip
                rows.append(row)
            if args.tune:
                tuned, tune_time = mltk_run(folder, Path(tmp), args.threads, "tune", task, init)
                metric = "ndcg@5" if name == "lambdarank" else metrics[0]
                met = tuned[metric] >= target if metric.startswith(HIGHER) else tuned[metric] <= target
                for row in rows:
                    if row["example"] == name and row["metric"] == metric:
                        row.update(tuned=tuned[metric], tune_target=target, tune_met=met, tune_s=tune_time)
            if args.seeds:
                seeded += _over_seeds(folder, Path(tmp), args, task, metrics, init)
    header = ["example", "metric", "raw", "mltk_conf", "max_abs_diff", "raw_s", "mltk_conf_s", "defaults",
              "defaults_ok", "defaults_s", "tuned", "tune_target", "tune_met", "tune_s"]  # fmt: skip
    print(f"threads {args.threads}, repeats {args.repeats}, load {os.getloadavg()[0]:.2f}")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(_cell(row.get(h)) for h in header))
    if seeded:
        header = ["example", "metric", "seeds", "raw_median", "defaults_median", "tuned_median", "tuned_values"]
        print(f"\nmedians over seeds 0..{args.seeds - 1}")
        print(" | ".join(header))
        for row in seeded:
            print(" | ".join(_cell(row.get(h)) for h in header))


def _over_seeds(folder: Path, runs: Path, args: argparse.Namespace, task: str, metrics: list, init: bool) -> list:
    seeds = range(args.seeds)
    raw = [raw_lightgbm(folder, args.threads, seed)[0] for seed in seeds]
    defaults = [mltk_run(folder, runs, args.threads, "default", task, True, seed)[0] for seed in seeds]
    tuned = [mltk_run(folder, runs, args.threads, "tune", task, init, seed)[0] for seed in seeds] if args.tune else []
    out = []
    for metric in metrics:
        row = {"example": folder.name, "metric": metric, "seeds": args.seeds,
               "raw_median": statistics.median(r[metric] for r in raw),
               "defaults_median": statistics.median(d[metric] for d in defaults)}  # fmt: skip
        if tuned:
            values = [t[metric] for t in tuned]
            row.update(tuned_median=statistics.median(values), tuned_values=" ".join(f"{v:.4f}" for v in values))
        out.append(row)
    return out


def _cell(value: object) -> str:
    if isinstance(value, float) and 0 < abs(value) < 1e-4:
        return f"{value:.1e}"
    if isinstance(value, float):
        return f"{value:.6f}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


if __name__ == "__main__":
    main()
