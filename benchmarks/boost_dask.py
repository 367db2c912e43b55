"""`mltk boost train --dask local:2` against one process: model quality, a table bigger than a worker, overhead.

Every run is a fresh `mltk` process (imports and cluster start included), and metrics come from
`mltk boost evaluate` on a test file neither side trained on. Everything ends in one table.

1. quality: LightGBM's binary and regression examples (label first, no header; split into 2 TSV
   parts for Dask, their .weight/.init side files left out on both sides; train.conf's trees with
   feature_fraction 0.8 but no bagging, which samples rows per machine) over --seeds seeds, and a
   synthetic table of --synthetic-rows rows (binary and regression targets, early stopping on a
   separate validation table) over --synthetic-seeds seeds. Goal: AUC within 0.002, L2 within 1% of
   one process; each seed's gap is set beside one process's own seed-to-seed spread.
2. big (--big): a table of --big-gb GB (float64 in memory) as --big-files Parquet files, trained
   with --dask local:2:MEMORY; prints rows, files, wall time and the peak RSS of each worker process.
3. overhead: --rows x 50 (default 1M) in 4 Parquet parts, --dask local:2 (1 thread per worker) vs one
   process with --threads 2, the same 100 rounds, alternating; goal: ratio <= 1.5. Prints where each
   side's time went (from the phase lines both print on stderr).

    .venv/bin/python benchmarks/boost_dask.py [--seeds 5] [--synthetic-seeds 1] [--repeats 2] [--big]
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
# train.conf's tree parameters and feature sampling, without bagging (it samples rows per machine), fixed rounds.
EXAMPLE_ARGS = ["--num-rounds", "100", "--learning-rate", "0.1", "--num-leaves", "63", "--valid-fraction", "0",
                "--early-stopping", "0", "--param", "min_data_in_leaf=50", "--param", "min_sum_hessian_in_leaf=5",
                "--param", "feature_fraction=0.8"]  # fmt: skip
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


@dataclass
class Row:
    """One line of the final table."""

    measure: str
    one: str
    dask: str
    goal: str


def gap(metric: str, one: float, dask: float) -> float:
    """dask minus one process: AUC points, or L2 relative to one process."""
    return dask - one if metric == "auc" else dask / one - 1


def shown(metric: str, value: float) -> str:
    return f"{value:+.4f}" if metric == "auc" else f"{value:+.2%}"


def within(metric: str, value: float) -> bool:
    return abs(value) <= 0.002 if metric == "auc" else value <= 0.01


def seeds_row(name: str, metric: str, pairs: list[tuple[float, float]]) -> Row:
    """Means over seeds, the mean gap, the worst seed's gap, and one process's seed-to-seed spread."""
    ones, dasks = [one for one, _ in pairs], [dask for _, dask in pairs]
    gaps = [gap(metric, one, dask) for one, dask in pairs]
    mean_gap = gap(metric, statistics.mean(ones), statistics.mean(dasks))
    spread = statistics.stdev(ones) if len(ones) > 1 else 0.0
    spread_text = f"{spread:.4f}" if metric == "auc" else f"{spread / statistics.mean(ones):.2%}"
    worst = max(gaps, key=abs)
    return Row(
        f"{name}, test {metric.upper()}, {len(pairs)} seed(s)",
        f"{statistics.mean(ones):.5f} (sd over seeds {spread_text}, {min(ones):.5f}..{max(ones):.5f})",
        f"{statistics.mean(dasks):.5f} (mean gap {shown(metric, mean_gap)}, worst seed {shown(metric, worst)})",
        f"{'AUC within 0.002' if metric == 'auc' else 'L2 within 1%'}: "
        f"{'met' if within(metric, mean_gap) else 'NOT met'} on the mean, "
        f"{sum(within(metric, g) for g in gaps)}/{len(gaps)} seeds",
    )


def train_pair(one: list[str], dask: list[str], test: Path, metric: str) -> tuple[float, float, Timed, Timed]:
    """One process and --dask local:2 on the same rows: both test metrics and both runs."""
    single = mltk("boost", "train", *one, "--threads", "2")
    spread = mltk("boost", "train", *dask, "--dask", "local:2")
    scores = [evaluate(run.result["run_dir"], test)[metric] for run in (single, spread)]
    return scores[0], scores[1], single, spread


def quality_examples(tmp: Path, seeds: int) -> list[Row]:
    rows = []
    for example, stem, metric, task in (
        ("binary_classification", "binary", "auc", "binary"),
        ("regression", "regression", "l2", "regression"),  # 0/1 labels: inferred as binary without --task
    ):
        folder = tmp / stem
        (folder / "parts").mkdir(parents=True)
        shutil.copy(EXAMPLES / example / f"{stem}.train", folder / "train.tsv")  # no side files beside it
        shutil.copy(EXAMPLES / example / f"{stem}.test", folder / "test.tsv")
        split_lines(folder / "train.tsv", folder / "parts", 2)
        pairs = []
        for seed in range(1, seeds + 1):
            args = [*EXAMPLE_ARGS, "--seed", str(seed), "--task", task, "--runs-dir", str(folder / "runs"), "--quiet"]
            one, dask, _, _ = train_pair([str(folder / "train.tsv"), *args], [str(folder / "parts"), *args],
                                         folder / "test.tsv", metric)  # fmt: skip
            pairs.append((one, dask))
            print(f"  LightGBM {stem} example, seed {seed}: {metric} one process {one:.5f}, dask {dask:.5f} "
                  f"({shown(metric, gap(metric, one, dask))})", flush=True)  # fmt: skip
        rows.append(seeds_row(f"LightGBM {stem} example (7,000 rows; test 500)", metric, pairs))
    return rows


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


def quality_synthetic(tmp: Path, rows: int, targets: list[str], seeds: int) -> list[Row]:
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
    common = ["--num-rounds", "150", "--learning-rate", "0.2", "--early-stopping", "20", "--param",
              "feature_fraction=0.8", "--runs-dir", str(folder / "runs"), "--quiet"]  # fmt: skip
    table = []
    for target, other, metric in (("bought", "amount", "auc"), ("amount", "bought", "l2")):
        if target not in targets:
            continue
        pairs = []
        for seed in range(1, seeds + 1):
            args = ["--target", target, "--drop", other, *common, "--seed", str(seed)]
            one, dask, single, spread = train_pair(
                [str(folder / "train.parquet"), *args, "--valid", str(folder / "valid.parquet")],
                [str(folder / "part-*.parquet"), *args, "--valid", str(folder / "valid-*.parquet")],
                folder / "test.parquet", metric,
            )  # fmt: skip
            pairs.append((one, dask))
            print(f"  synthetic {rows // 1000}k {target}, seed {seed}: {metric} one process {one:.5f}, dask {dask:.5f} "
                  f"({shown(metric, gap(metric, one, dask))}); best round {single.result['best_round']} vs "
                  f"{spread.result['best_round']}; wall {single.seconds:.0f} s vs {spread.seconds:.0f} s",
                  flush=True)  # fmt: skip
        table.append(seeds_row(f"synthetic {rows / 1e6:g}M x 21 {target} (test {rows // 10} rows)", metric, pairs))
    return table


def big(tmp: Path, gigabytes: float, files: int, memory: str, rounds: int) -> Row:
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
    peaks = ", ".join(f"{rss / 2**30:.2f}" for _, rss in workers)
    return Row(f"bigger than a worker: {rows_per_file * files} rows x {columns + 2}, {files} Parquet files, "
               f"{gigabytes:g} GB as float64", "", f"{rounds} rounds in {timed.seconds:.0f} s; peak RSS per worker "
               f"{peaks} GiB (limit {memory})", "finishes, peak under the limit")  # fmt: skip


# Where each side's time went: (label, the start of the stderr line that ends the phase; None: the exit).
ONE_PHASES = [("imports, reading, schema", "task:"), ("encoding", "run:"), ("Dataset, boosting, writing", None)]
DASK_PHASES = [("imports", "dask: starting"), ("cluster start", "dask:"), ("schema pass (level columns)", "task:"),
               ("reading + encoding parts", "run:"), ("bin sample, ports", "dask: training on"),
               ("bins + Datasets, boosting", "dask: bins and"), ("writing the run, cluster close", None)]  # fmt: skip


def phases(timed: Timed, marks: list[tuple[str, str | None]]) -> list[tuple[str, float]]:
    """Seconds per phase: from the end of the one before to the first later stderr line starting with its mark."""
    out, last, lines = [], 0.0, list(timed.phases)
    for label, mark in marks:
        hit = next((i for i, (_, text) in enumerate(lines) if mark is not None and text.startswith(mark)), None)
        end = lines[hit][0] if hit is not None else timed.seconds
        out.append((label, end - last))
        last, lines = end, lines[hit + 1 :] if hit is not None else []
    return out


def overhead(tmp: Path, rows: int, repeats: int) -> list[Row]:
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
    runs: dict[str, list[Timed]] = {"one": [], "dask": []}
    for repeat in range(repeats):
        for side in ["one", "dask"] if repeat % 2 == 0 else ["dask", "one"]:
            if side == "one":
                runs["one"].append(mltk("boost", "train", str(folder / "all.parquet"), *common, "--threads", "2"))
            else:
                runs["dask"].append(
                    mltk("boost", "train", str(folder / "part-*.parquet"), *common, "--dask", "local:2")
                )
        one, dask = runs["one"][-1].seconds, runs["dask"][-1].seconds
        print(f"  repeat {repeat + 1}: one process {one:.1f} s, dask {dask:.1f} s (load {os.getloadavg()[0]:.1f})",
              flush=True)  # fmt: skip
    one = statistics.median(r.seconds for r in runs["one"])
    dask = statistics.median(r.seconds for r in runs["dask"])
    print(f"overhead: {rows} x 50, 100 rounds, median of {repeats}: one process {one:.1f} s, dask {dask:.1f} s; "
          f"ratio {dask / one:.2f} (goal <= 1.5: {'met' if dask / one <= 1.5 else 'NOT met'})", flush=True)  # fmt: skip
    breakdown = []
    for side, marks in (("one", ONE_PHASES), ("dask", DASK_PHASES)):
        last = runs[side][-1]
        spent = phases(last, marks)
        breakdown.append("; ".join(f"{label} {seconds:.1f}" for label, seconds in spent if seconds >= 0.05))
        print(
            f"  {side} (last run, {last.seconds:.1f} s): " + ", ".join(f"{label} {sec:.1f} s" for label, sec in spent)
        )
    return [
        Row(f"overhead: {rows // 1000}k x 50 (4 Parquet parts / 1 file), 100 rounds, median of {repeats}, wall time "
            "incl. imports and cluster start", f"{one:.1f} s", f"{dask:.1f} s: ratio {dask / one:.2f}",
            f"<= 1.5: {'met' if dask / one <= 1.5 else 'NOT met'}"),
        Row("  where the time went (s, last run)", breakdown[0], breakdown[1], ""),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-examples", action="store_true", help="quality on the synthetic table only")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per LightGBM example")
    parser.add_argument("--synthetic-rows", type=int, default=2_000_000)
    parser.add_argument("--synthetic-seeds", type=int, default=1)
    parser.add_argument("--synthetic-targets", default="bought,amount", help="bought (binary), amount (regression)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the overhead table (x 50 columns)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--big", action="store_true", help="also train on a table bigger than one worker")
    parser.add_argument("--big-gb", type=float, default=6.0)
    parser.add_argument("--big-files", type=int, default=24)
    parser.add_argument("--big-rounds", type=int, default=50)
    parser.add_argument("--worker-memory", default="4GB")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where the data is written")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"load (uptime): {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} cores; "
          f"OMP_WAIT_POLICY={ENV['OMP_WAIT_POLICY']}", flush=True)  # fmt: skip
    table: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="boost-dask-", dir=args.tmp) as tmp:
        tmp_path = Path(tmp)
        if not args.skip_quality:
            print("quality (test metric, same parameters and rounds):", flush=True)
            if not args.skip_examples:
                table += quality_examples(tmp_path, args.seeds)
            targets = args.synthetic_targets.split(",")
            table += quality_synthetic(tmp_path, args.synthetic_rows, targets, args.synthetic_seeds)
        if args.big:
            table.append(big(tmp_path, args.big_gb, args.big_files, args.worker_memory, args.big_rounds))
        if not args.skip_overhead:
            table += overhead(tmp_path, args.rows, args.repeats)
    print(
        f"\nload at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"{(time.perf_counter() - started) / 60:.0f} min in all\n"
    )
    print("| measure | one process (`--threads 2`) | `--dask local:2` (2 x 1 thread) | goal |")
    print("|---|---|---|---|")
    for row in table:
        print(f"| {row.measure} | {row.one} | {row.dask} | {row.goal} |")


if __name__ == "__main__":
    main()
