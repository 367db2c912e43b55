"""`mltk boost train --dask local:2` against one process: model quality, a table bigger than a worker, overhead.

Every run is a fresh `mltk` process (imports and cluster start included), and metrics come from
`mltk boost evaluate` on a test file neither side trained on.

1. quality: LightGBM's binary and regression examples (label first, no header; split into 2 TSV
   parts for Dask, their .weight/.init side files left out on both sides) and a synthetic table of
   --synthetic-rows rows (binary and regression targets, early stopping on a separate validation
   table). Goal: AUC within 0.002, L2 within 1% of one process.
2. big (--big): a table of --big-gb GB (float64 in memory) as --big-files Parquet files, trained
   with --dask local:2:MEMORY; prints rows, files, wall time and the peak RSS of each worker process.
3. overhead: --rows x 50 (default 1M) in 4 Parquet parts, --dask local:2 (1 thread per worker) vs one
   process with --threads 2, the same 100 rounds; goal: ratio <= 1.5. Prints when each phase ended.

    .venv/bin/python benchmarks/boost_dask.py [--skip-quality] [--skip-overhead] [--repeats 3]
    .venv/bin/python benchmarks/boost_dask.py --skip-quality --skip-overhead --big [--big-gb 6 --worker-memory 4GB]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EXAMPLES = Path("/work/shared/data/lightgbm")
MLTK = str(Path(sys.executable).with_name("mltk"))
# train.conf's tree parameters, without bagging (it samples rows per machine) and fixed rounds.
EXAMPLE_ARGS = ["--num-rounds", "100", "--learning-rate", "0.1", "--num-leaves", "63", "--valid-fraction", "0",
                "--early-stopping", "0", "--seed", "1", "--param", "min_data_in_leaf=50",
                "--param", "min_sum_hessian_in_leaf=5"]  # fmt: skip
# Idle OpenMP threads sleep instead of spinning: on a shared box a spinning thread steals the core
# its partner needs, and a 2-thread process slowed down 5x here (both sides get the same setting).
ENV = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
FIXED_100 = ["--num-rounds", "100", "--learning-rate", "0.1", "--valid-fraction", "0", "--early-stopping", "0",
             "--seed", "1"]  # fmt: skip


@dataclass
class Timed:
    seconds: float
    result: dict
    phases: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, stderr line)
    peak_rss: dict[int, int] = field(default_factory=dict)  # child pid -> peak bytes


def mltk(*args: str, watch: bool = False) -> Timed:
    """Run ``mltk ARGS`` as a fresh process: wall time, its JSON, timestamped stderr, children's peak RSS."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen([MLTK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    timed = Timed(0.0, {})

    def read_stderr() -> None:
        for line in proc.stderr:
            timed.phases.append((time.perf_counter() - start, line.rstrip()))

    def sample_rss() -> None:
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                for child in parent.children(recursive=True):
                    rss = child.memory_info().rss
                    timed.peak_rss[child.pid] = max(timed.peak_rss.get(child.pid, 0), rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    threads = [threading.Thread(target=read_stderr)] + ([threading.Thread(target=sample_rss)] if watch else [])
    for thread in threads:
        thread.start()
    stdout = proc.stdout.read()
    proc.wait()
    for thread in threads:
        thread.join()
    timed.seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(text for _, text in timed.phases[-20:])
        sys.exit(f"mltk {' '.join(args)} failed ({proc.returncode}):\n{tail}")
    lines = [line for line in stdout.splitlines() if line.strip()]
    timed.result = json.loads(lines[-1]) if lines else {}
    return timed


def evaluate(run: str, data: Path) -> dict:
    return mltk("boost", "evaluate", run, str(data), "--format", "json").result


def split_lines(source: Path, folder: Path, parts: int) -> None:
    """A headerless text file cut into ``parts`` files of whole lines (part-0.tsv, ...)."""
    lines = source.read_text().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    for i in range(parts):
        (folder / f"part-{i}.tsv").write_text("".join(lines[i * size : (i + 1) * size]))


def compare(name: str, metric: str, single: float, dask: float) -> None:
    if metric == "auc":
        gap, goal = dask - single, "|diff| <= 0.002"
        met = abs(gap) <= 0.002
    else:
        gap, goal = dask / single - 1, "within 1%"
        met = gap <= 0.01
    shown = f"{gap:+.4f}" if metric == "auc" else f"{gap:+.2%}"
    print(f"  {name:24s} {metric:4s} one process {single:.5f}  dask {dask:.5f}  diff {shown}  "
          f"({goal}: {'met' if met else 'NOT met'})", flush=True)  # fmt: skip


def quality_examples(tmp: Path) -> None:
    for example, stem, metric, task in (
        ("binary_classification", "binary", "auc", "binary"),
        ("regression", "regression", "l2", "regression"),  # 0/1 labels: inferred as binary without --task
    ):
        folder = tmp / stem
        (folder / "parts").mkdir(parents=True)
        shutil.copy(EXAMPLES / example / f"{stem}.train", folder / "train.tsv")  # no side files beside it
        shutil.copy(EXAMPLES / example / f"{stem}.test", folder / "test.tsv")
        split_lines(folder / "train.tsv", folder / "parts", 2)
        runs = ["--task", task, "--runs-dir", str(folder / "runs"), "--quiet"]
        single = mltk("boost", "train", str(folder / "train.tsv"), *EXAMPLE_ARGS, "--threads", "2", *runs)
        dask = mltk("boost", "train", str(folder / "parts"), *EXAMPLE_ARGS, "--dask", "local:2", *runs)
        test = folder / "test.tsv"
        compare(f"LightGBM {stem} example", metric, evaluate(single.result["run_dir"], test)[metric],
                evaluate(dask.result["run_dir"], test)[metric])  # fmt: skip


def synthetic(rows: int, columns: int, seed: int) -> dict[str, np.ndarray]:
    """Float features, one 12-level text column; a binary target and a regression target from the same signal."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, columns)).astype(np.float64)
    level = rng.integers(0, 12, size=rows)
    signal = X[:, :5].sum(axis=1) + X[:, 5] * X[:, 6] + 0.3 * (level % 4) + np.sin(2 * X[:, 7])
    data = {f"f{i}": X[:, i] for i in range(columns)}
    data["shop"] = np.asarray([f"shop{v}" for v in range(12)], dtype=object)[level]
    data["bought"] = (signal + rng.standard_normal(rows) > 0.5).astype(np.int64)
    data["amount"] = signal + 0.5 * rng.standard_normal(rows)
    return data


def write_parts(data: dict[str, np.ndarray], folder: Path, stem: str, parts: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(data)
    size = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * size, size), folder / f"{stem}-{i}.parquet")


def quality_synthetic(tmp: Path, rows: int, targets: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp / "synthetic"
    folder.mkdir()
    train, valid, test = synthetic(rows, 20, 0), synthetic(rows // 10, 20, 1), synthetic(rows // 10, 20, 2)
    pq.write_table(pa.table(train), folder / "train.parquet")
    pq.write_table(pa.table(valid), folder / "valid.parquet")
    pq.write_table(pa.table(test), folder / "test.parquet")
    write_parts(train, folder, "part", 8)
    write_parts(valid, folder, "valid", 2)
    del train, valid, test
    common = ["--num-rounds", "300", "--learning-rate", "0.1", "--early-stopping", "20", "--seed", "1",
              "--runs-dir", str(folder / "runs"), "--quiet"]  # fmt: skip
    for target, other, metric in (("bought", "amount", "auc"), ("amount", "bought", "l2")):
        if target not in targets:
            continue
        args = ["--target", target, "--drop", other, *common]
        single = mltk("boost", "train", str(folder / "train.parquet"), *args, "--valid", str(folder / "valid.parquet"),
                      "--threads", "2")  # fmt: skip
        dask = mltk("boost", "train", str(folder / "part-*.parquet"), *args, "--valid", str(folder / "valid-*.parquet"),
                    "--dask", "local:2")  # fmt: skip
        test = folder / "test.parquet"
        compare(f"synthetic {rows // 1000}k {target}", metric, evaluate(single.result["run_dir"], test)[metric],
                evaluate(dask.result["run_dir"], test)[metric])  # fmt: skip
        print(f"    rounds: one process {single.result['best_round']}, dask {dask.result['best_round']}; "
              f"wall: {single.seconds:.1f} s vs {dask.seconds:.1f} s", flush=True)  # fmt: skip


def big(tmp: Path, gigabytes: float, files: int, memory: str, rounds: int) -> None:
    columns = 20
    rows_per_file = int(gigabytes * 1e9 / 8 / (columns + 2) / files)
    folder = tmp / "big"
    folder.mkdir()
    free = shutil.disk_usage(tmp).free
    if free < 1.2 * gigabytes * 1e9:
        sys.exit(f"{tmp}: {free / 1e9:.1f} GB free, need about {1.2 * gigabytes:.1f} GB for the Parquet files")
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    for i in range(files):
        data = synthetic(rows_per_file, columns, 100 + i)
        data.pop("shop")  # all float: the size is what float64 takes in memory
        pq.write_table(pa.table(data), folder / f"part-{i:02d}.parquet")
    on_disk = sum(p.stat().st_size for p in folder.iterdir())
    print(f"big: {rows_per_file * files} rows x {columns + 2} columns in {files} Parquet files ({gigabytes:g} GB "
          f"as float64, {on_disk / 1e9:.2f} GB on disk; written in {time.perf_counter() - started:.0f} s)",
          flush=True)  # fmt: skip
    timed = mltk("boost", "train", str(folder / "part-*.parquet"), "--target", "bought", "--drop", "amount",
                 "--num-rounds", str(rounds), "--learning-rate", "0.1", "--valid-fraction", "0",
                 "--early-stopping", "0", "--dask", f"local:2:{memory}", "--runs-dir", str(tmp / "runs-big"),
                 watch=True)  # fmt: skip
    workers = sorted(timed.peak_rss.items(), key=lambda item: -item[1])[:2]
    print(f"big: trained {rounds} rounds in {timed.seconds:.1f} s wall; worker memory limit {memory}; peak RSS per "
          "worker: " + ", ".join(f"pid {pid} {rss / 2**30:.2f} GiB" for pid, rss in workers), flush=True)  # fmt: skip
    for second, line in timed.phases:
        print(f"    {second:7.1f} s  {line}")


def overhead(tmp: Path, rows: int, repeats: int) -> None:
    folder = tmp / "overhead"
    folder.mkdir()
    data = synthetic(rows, 49, 7)
    data.pop("shop")
    data.pop("amount")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(data), folder / "all.parquet")
    write_parts(data, folder, "part", 4)
    del data
    common = ["--target", "bought", *FIXED_100, "--runs-dir", str(folder / "runs")]
    times: dict[str, list[float]] = {"one process (2 threads)": [], "dask local:2 (2 x 1 thread)": []}
    last = None
    for repeat in range(repeats):
        sides = ["one", "dask"] if repeat % 2 == 0 else ["dask", "one"]
        for side in sides:
            if side == "one":
                run = mltk("boost", "train", str(folder / "all.parquet"), *common, "--threads", "2")
                times["one process (2 threads)"].append(run.seconds)
            else:
                last = mltk("boost", "train", str(folder / "part-*.parquet"), *common, "--dask", "local:2")
                times["dask local:2 (2 x 1 thread)"].append(last.seconds)
        print(f"  repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["dask local:2 (2 x 1 thread)"] / medians["one process (2 threads)"]
    print(f"overhead: {rows} x 50, 100 rounds, median of {repeats}: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in medians.items())
          + f"; ratio {ratio:.2f} (goal <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'})", flush=True)  # fmt: skip
    print("  phases of the last dask run (seconds since start; each line is printed when the phase before it ended):")
    for second, line in last.phases:
        print(f"    {second:7.1f} s  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-examples", action="store_true", help="quality on the synthetic table only")
    parser.add_argument("--synthetic-rows", type=int, default=2_000_000)
    parser.add_argument("--synthetic-targets", default="bought,amount", help="bought (binary), amount (regression)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the overhead table (x 50 columns)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also train on a table bigger than one worker")
    parser.add_argument("--big-gb", type=float, default=6.0)
    parser.add_argument("--big-files", type=int, default=24)
    parser.add_argument("--big-rounds", type=int, default=50)
    parser.add_argument("--worker-memory", default="4GB")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where the data is written")
    args = parser.parse_args()
    print(f"load (uptime): {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} cores; "
          f"OMP_WAIT_POLICY={ENV['OMP_WAIT_POLICY']}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="boost-dask-", dir=args.tmp) as tmp:
        tmp_path = Path(tmp)
        if not args.skip_quality:
            print("quality (test metric, same parameters and rounds):", flush=True)
            if not args.skip_examples:
                quality_examples(tmp_path)
            quality_synthetic(tmp_path, args.synthetic_rows, args.synthetic_targets.split(","))
        if args.big:
            big(tmp_path, args.big_gb, args.big_files, args.worker_memory, args.big_rounds)
        if not args.skip_overhead:
            overhead(tmp_path, args.rows, args.repeats)
    print(f"load at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
