"""``mltk boost train/predict --dask``: LightGBM's data-parallel learner on the workers of a Dask cluster.

DATA is a glob, a folder or a file of parts. ``dask.dataframe.from_map`` reads them lazily on the
workers, one partition per file, with the reader one machine uses (``read_data``), so delimiters,
headers and column names come out alike. The schema is made by the same ``build_schema``, from a
small table of every distinct level, class and query id found in all partitions: categorical levels
and class labels are numbered as if the whole table had been read at once. Each worker then encodes
its own partitions with ``prepare``, as float64 like one process, or as float32 (half the memory) when
a worker's share of the table would crowd its memory limit (``feature_dtype``).

Training is LightGBM's distributed mode (``tree_learner=data``, with the network parameters and the
port handshake of ``lightgbm.dask``), driven here rather than through ``DaskLGBMClassifier`` because
of two documented limits of ``lightgbm.dask`` (4.7):
- each worker evaluates only its own shard of the validation set, so workers disagree about when to
  stop, and early stopping hangs or fails on a socket error (LightGBM #6351, #7009; #7290 pending).
  Here every worker evaluates the whole validation set: the same model on the same rows, so all of
  them stop at the same round;
- it concatenates a worker's partitions into one array before building the Dataset (twice the
  memory); here the Dataset is built from the list of partitions without a copy.
Feature bins are the ones one machine finds: LightGBM's own sample of the whole table (the same
rows, drawn with the same seed), binned by LightGBM's own code on every worker.
Only this process (the client) writes the run directory, and only after training has succeeded: the
same model.txt (its schema line included, so it loads alone), schema.json and summary as on one machine.
"""

from __future__ import annotations

import glob
import logging
import operator
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.boost.data import SIDE_FILES, Table, iter_chunks, read_data, sniff_layout
from mltoolkit.boost.params import BoostConfig, lightgbm_params
from mltoolkit.boost.prepare import Prepared, prepare, schema_for, target_name
from mltoolkit.boost.schema import MAX_CLASSES, Schema
from mltoolkit.core.config import config_dict
from mltoolkit.core.console import info, warn
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.device import available_cores
from mltoolkit.core.errors import DataError, ResourceError, UsageError
from mltoolkit.core.runs import Run, start_run
from mltoolkit.techniques import BOOST

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client, Future

INSTALL = "pip install 'mltk[dask]'"
CONNECT_TIMEOUT_S = 10
WATCH_S = 1.0  # how often a waiting client checks that the training workers are still there
SAMPLE_ROWS = 1000  # rows of the first part read on the client for the layout


def require_dask() -> None:
    """Dask is an optional extra: without it, say how to install it (exit 4), not an ImportError."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ResourceError(f"--dask needs the Dask extra ({exc.name} is not installed): {INSTALL}") from None


def local_shape(spec: str) -> tuple[int, int, str]:
    """``local[:N[:MEMORY]]`` -> (worker processes, threads each, memory limit each).

    N defaults to one process per core; the cores are shared out so that processes x threads never
    oversubscribes the machine (LightGBM's OpenMP threads on a busy core are slower than fewer).
    """
    parts = spec.split(":")
    cores = available_cores()
    try:
        workers = int(parts[1]) if len(parts) > 1 and parts[1] else cores
    except ValueError:
        workers = 0
    if workers < 1 or len(parts) > 3:
        raise UsageError(f"--dask {spec}: expected a scheduler address, local, local:N or local:N:MEMORY (local:2:4GB)")
    memory = parts[2] if len(parts) > 2 else "auto"
    if memory != "auto" and not _is_size(memory):
        raise UsageError(f"--dask {spec}: memory limit {memory!r} is not a size (4GB, 1.5GiB, 0 for none, or auto)")
    return workers, max(1, cores // workers), memory


def _is_size(size: str) -> bool:
    """Whether Dask reads ``size`` as a memory limit: a byte count of 0 or more."""
    from dask.utils import parse_bytes

    try:
        return parse_bytes(size) >= 0
    except ValueError:
        return False


@contextmanager
def connect(spec: str) -> Iterator[Client]:
    """A client of the scheduler at ``spec``, or of a LocalCluster that lives as long as the block."""
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"dataframe.convert-string": False}):  # object strings, as pandas reads them here
        if spec == "local" or spec.startswith("local:"):
            workers, threads, memory = local_shape(spec)
            info(f"dask: starting {workers} local worker process(es) x {threads} thread(s), memory limit {memory}")
            with (
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads,
                    memory_limit=memory,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,  # worker errors reach the client, which says them once
                ) as cluster,
                Client(cluster) as client,
            ):
                info(f"dask: {workers} worker(s) ready")
                yield client
            return
        try:
            client = Client(spec, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ResourceError(f"cannot reach the Dask scheduler at {spec} ({str(exc).splitlines()[0]})") from None
        with client:
            if not client.nthreads():
                raise ResourceError(f"the Dask scheduler at {spec} has no workers")
            yield client


def list_parts(pattern: str | None) -> list[str]:
    """The files of a glob, a folder or one path, sorted; LightGBM side files are not parts."""
    if pattern in (None, "-"):
        raise UsageError("--dask reads files the workers can open: give DATA as a glob, a folder or a file")
    path = Path(pattern)
    candidates = path.iterdir() if path.is_dir() else map(Path, glob.glob(pattern))
    files = sorted(
        str(p)
        for p in candidates
        if p.is_file() and not p.name.startswith(".") and p.suffix.lstrip(".") not in SIDE_FILES
    )
    if not files:
        raise DataError(f"{pattern}: matches no data files")
    sides = [f"{f}.{kind}" for f in files for kind in SIDE_FILES if Path(f"{f}.{kind}").exists()]
    if sides:
        warn(f"{sides[0]}: LightGBM side files are not read with --dask; use weight/group columns instead")
    return files


def read_parts(files: list[str]) -> tuple[Any, Table]:
    """A lazy Dask frame with one partition per file, and the first rows of the first file (the layout)."""
    import dask.dataframe as dd

    sample = next(iter_chunks(files[0], SAMPLE_ROWS))
    if sample.frame is None:
        raise DataError(f"{files[0]}: --dask reads CSV/TSV, Parquet or JSON lines parts, not LibSVM")
    columns = [str(c) for c in sample.frame.columns]
    frame = dd.from_map(_read_part, files, meta=sample.frame.iloc[:0], expected=columns, first=files[0])
    return frame, sample


def _read_part(path: str, expected: list[str], first: str, columns: list[str] | None = None) -> pd.DataFrame:
    """One partition (on a worker): a file read as on one machine, with the first file's columns.

    With ``columns``, only those come back, and a Parquet part reads nothing else (the schema pass
    needs the level columns alone; reading whole files twice was a tenth of a small run's time).
    """
    _release_freed_memory()
    if columns is not None and _is_parquet(path):
        import pandas as pd
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        _check_columns(path, [c for c in schema.names if c not in index], expected, first)
        return pd.read_parquet(path, columns=columns)
    frame = read_data(path, side_files=False).frame
    if frame is None:
        raise DataError(f"{path}: --dask reads CSV/TSV, Parquet or JSON lines parts, not LibSVM")
    frame.columns = [str(c) for c in frame.columns]
    _check_columns(path, list(frame.columns), expected, first)
    return frame[expected if columns is None else columns]


def _release_freed_memory() -> None:
    """Arrow allocates through the C library's malloc on this worker, not through its own mimalloc pool.

    Dask's memory limit watches a worker's RSS, and mimalloc keeps the pages of each decoded Parquet
    file after the frame is freed: with 12 parts of 250 MB a worker held 0.8 GB more than its data,
    and the 4 GB worker of the benchmark's 6 GB table was paused, then killed. The C allocator returns
    them (Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_``), so a worker holds its encoded parts and little else.
    """
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def _is_parquet(path: str) -> bool:
    with open(path, "rb") as handle:
        return sniff_layout(path, handle.read(4)).kind == "parquet"


def _check_columns(path: str, columns: list[str], expected: list[str], first: str) -> None:
    """Every part has the first part's columns: name the file and the first column that differs."""
    missing = [c for c in expected if c not in columns]
    if missing:
        raise DataError(f"{path}: has no column {missing[0]!r} (which {first} has); every part needs the same columns")
    extra = [c for c in columns if c not in expected]
    if extra:
        raise DataError(f"{path}: column {extra[0]!r} is not in {first}; every part needs the same columns")


def _summarize(frame: pd.DataFrame, levels: list[str], target: str | None, group: str | None) -> dict[str, Any]:
    """What the schema needs from one partition: distinct values of ``levels``, query ids, the row count."""
    import pandas as pd

    values = {}
    for name in levels:
        distinct = pd.Series(frame[name].dropna().unique(), dtype=frame[name].dtype)
        if name == target and pd.api.types.is_numeric_dtype(distinct):
            distinct = distinct[: MAX_CLASSES + 1]  # enough to tell a few classes from a regression target
        values[name] = distinct
    return {"rows": len(frame), "values": values, "groups": frame[group].unique().tolist() if group else None}


def _summary_table(sample: Table, summaries: list[dict[str, Any]], source: str) -> Table:
    """A table holding every distinct value of the level columns (and sample rows of the others).

    ``build_schema`` reads levels, classes and the task from it exactly as from the whole table.
    Shorter columns are repeated to the longest: repeats change no distinct set and no dtype.
    """
    import pandas as pd

    columns: dict[str, pd.Series] = {}
    for name in sample.frame.columns:
        merged = [s["values"][name] for s in summaries if name in s["values"]]
        column = pd.concat(merged).drop_duplicates() if merged else sample.frame[name]
        columns[name] = column if len(column) else sample.frame[name]
    length = max(len(c) for c in columns.values())
    frame = pd.DataFrame(
        {name: c.take(np.arange(length) % len(c)).reset_index(drop=True) for name, c in columns.items()}
    )
    return Table(source=source, frame=frame, headerless=sample.headerless)


def infer_schema(sample: Table, files: list[str], cfg: BoostConfig) -> tuple[Schema, list[int]]:
    """The schema of all partitions together (one pass over their level columns), and their row counts."""
    import dask
    import pandas as pd

    target = target_name(sample, cfg.target, cfg.label_column)
    excluded = {cfg.weight, cfg.group, *cfg.id, *cfg.drop}
    text = {c for c in sample.frame.columns if not pd.api.types.is_numeric_dtype(sample.frame[c])}
    levels = [
        c for c in sample.frame.columns if c not in excluded and (c in text or c in cfg.categorical or c == target)
    ]
    columns = [str(c) for c in sample.frame.columns]
    needed = [c for c in columns if c in levels or c == cfg.group]
    read = dask.delayed(_read_part)
    parts = [dask.delayed(_summarize)(read(f, columns, files[0], needed), levels, target, cfg.group) for f in files]
    summaries = list(dask.compute(*parts))
    source = files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} parts)"
    schema = schema_for(_summary_table(sample, summaries, source), target, cfg, use_init=False)
    if schema.task == "lambdarank":
        _check_groups(summaries, files, cfg.group)
    return schema, [s["rows"] for s in summaries]


def _check_groups(summaries: list[dict[str, Any]], files: list[str], group: str | None) -> None:
    """LightGBM ranks within one machine: a query group must not be split over two parts (two workers)."""
    owner: dict[Any, str] = {}
    for summary, path in zip(summaries, files):
        for key in summary["groups"]:
            first = owner.setdefault(key, path)
            if first != path:
                raise DataError(
                    f"{first} and {path} both hold rows of query group {key!r} (column {group!r}); ranking "
                    "needs each group's rows inside one part: write every group to a single file"
                )


def feature_dtype(client: Client, rows: int, features: int) -> type:
    """The dtype workers hold features in: float64, as one process does, unless a worker's share of the
    table as float64 would fill more than a third of its memory limit; then float32, half the memory.

    float64 gives one process's model: the same values, binned by the same bounds. float32 rounds a
    value, and a row within a float32 step of a bin bound can land in the next bin; the trees then
    drift from one process's by a row here and there (on the benchmark's 2M-row regression table, L2
    +3.95%, +0.82% and 0.00% for three seeds, where float64 gives the same L2 to five digits). The
    third leaves room for LightGBM's own Dataset and training buffers (about as much again at 20
    features) and the headroom Dask keeps before it spills.
    """
    limits = [worker.get("memory_limit") or 0 for worker in client.scheduler_info()["workers"].values()]
    share = rows * features * 8 / max(1, len(limits))
    if not limits or min(limits) == 0 or share <= min(limits) / 3:
        return np.float64
    info(
        f"dask: features held as float32 (as float64, a worker's share would be {share / 1e9:.1f} GB of its "
        f"{min(limits) / 1e9:.1f} GB limit); the model can differ slightly from one process's"
    )
    return np.float32


def _encode(
    frame: pd.DataFrame,
    path: str,
    schema: Schema,
    fraction: float,
    seed: int,
    held: np.ndarray | None,
    dtype: type,
) -> tuple[Prepared, Any]:
    """One partition in LightGBM's terms (``dtype``), with its ``held`` rows (or, for ranking, a random
    ``fraction`` of its query groups) set apart to validate on."""
    from mltoolkit.boost.prepare import split_validation

    data = prepare(Table(source=path, frame=frame), schema, dtype=dtype)  # straight into dtype: no float64 copy first
    if fraction <= 0:
        return data, None
    if held is None:
        return split_validation(data, fraction, seed, ranking=True)
    return data.subset(np.flatnonzero(~held)), data.subset(np.flatnonzero(held))


def encode_parts(
    client: Client,
    frame: Any,
    files: list[str],
    sizes: list[int],
    schema: Schema,
    fraction: float,
    seed: int,
    dtype: type,
) -> tuple[list[Future], list[Future]]:
    """Encode every partition on the worker that read it; wait, so bad data fails before a run exists.

    The validation rows are the ones one machine holds out of the whole table (``held_rows`` over all
    rows in part order). Ranking holds out whole groups, drawn per part.
    """
    import dask
    from distributed import wait

    from mltoolkit.boost.prepare import held_rows

    held: list[np.ndarray | None] = [None] * len(files)
    if fraction > 0 and schema.task != "lambdarank":
        held = np.split(held_rows(sum(sizes), fraction, seed), np.cumsum(sizes)[:-1])
    tasks = [
        dask.delayed(_encode)(part, path, schema, fraction, seed + index, rows, dtype)
        for index, (part, path, rows) in enumerate(zip(frame.to_delayed(), files, held))
    ]
    pairs = client.compute(tasks)
    train = [client.submit(operator.itemgetter(0), pair) for pair in pairs]
    valid = [client.submit(operator.itemgetter(1), pair) for pair in pairs] if fraction > 0 else []
    wait(train + valid)
    for future in train + valid:
        if future.status == "error":
            future.result()  # raises the worker's error here (a DataError keeps its message and exit code)
    return train, valid


class _Port:
    """A free TCP port on a worker, held until LightGBM is about to listen on it (as ``lightgbm.dask`` does)."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("", 0))
        self.number = self.socket.getsockname()[1]

    def release(self) -> None:
        self.socket.close()


def _sample_indices(total_rows: int, params: dict[str, Any]) -> np.ndarray:
    """The rows (of all parts, in file order) that one machine would bin features from.

    LightGBM's own draw (``LGBM_SampleIndices``): ``bin_construct_sample_cnt`` rows chosen with the
    ``data_random_seed`` that ``params`` give, so a table read by one process whose rows are the parts
    one after the other is binned from exactly these rows.
    """
    import ctypes

    from lightgbm.basic import _LIB, _c_str, _param_dict_to_str, _safe_call

    config = _c_str(_param_dict_to_str(params))
    count = ctypes.c_int(0)
    _safe_call(_LIB.LGBM_GetSampleCount(ctypes.c_int32(total_rows), config, ctypes.byref(count)))
    indices = np.empty(count.value, dtype=np.int32)
    drawn = ctypes.c_int32(0)
    _safe_call(
        _LIB.LGBM_SampleIndices(
            ctypes.c_int32(total_rows), config, indices.ctypes.data_as(ctypes.c_void_p), ctypes.byref(drawn)
        )
    )
    return indices[: drawn.value]


def _take_rows(part: Prepared, rows: np.ndarray) -> np.ndarray:
    return part.X[rows]


def _bin_sample(client: Client, parts: list[Future], params: dict[str, Any]) -> tuple[list[Future], int]:
    """The rows one machine would bin every feature from (a future per part), and the table's row count.

    Left to itself, distributed LightGBM finds each feature's bins from the rows of the one worker
    that owns the feature; with parts that differ (files written by date, say) the bins would fit
    that worker's rows only. From LightGBM's own sample of the whole table, every worker bins as
    one machine does.
    """
    sizes = _sizes(client, parts)
    indices = _sample_indices(sum(sizes), params)
    starts = np.cumsum([0, *sizes])
    picks = [indices[(indices >= lo) & (indices < hi)] - lo for lo, hi in zip(starts[:-1], starts[1:])]
    return [client.submit(_take_rows, part, rows, pure=False) for part, rows in zip(parts, picks)], int(starts[-1])


def shared_bins(sample: np.ndarray, total_rows: int, params: dict[str, Any], categorical: list[int]) -> Any:
    """A Dataset holding only feature bins: those one machine finds for a table of ``total_rows`` rows
    whose sampled rows are ``sample``. Training Datasets take it as their ``reference``.

    It calls the routine one process runs on its sample (``ConstructFromSampleData``, through
    ``LGBM_DatasetCreateFromSampledColumn``, as LightGBM's ``Sequence`` input does) with the whole
    table's row count, so ``feature_pre_filter`` drops the same features; it holds one row, not the
    sample (building a Dataset of the sample would bin and store all of its rows). This runs before
    LightGBM's network is up, so each worker bins every feature itself, with no exchange: LightGBM's
    distributed bin finding would apply ``forcedbins_filename`` to the wrong features on ranks > 0.
    """
    import ctypes

    import lightgbm as lgb
    from lightgbm.basic import _LIB, ZERO_THRESHOLD, _c_str, _param_dict_to_str, _safe_call

    values, positions = [], []
    for column in np.asarray(sample, dtype=np.float64).T:
        kept = (np.abs(column) > ZERO_THRESHOLD) | np.isnan(column)  # what LightGBM's own sampling keeps
        values.append(np.ascontiguousarray(column[kept]))
        positions.append(np.flatnonzero(kept).astype(np.int32))
    doubles, ints = ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_int32)
    config = {**params, **({"categorical_column": sorted(categorical)} if categorical else {})}
    bins = lgb.Dataset(None, params=params, categorical_feature=categorical or "auto")
    bins._handle = ctypes.c_void_p()
    _safe_call(
        _LIB.LGBM_DatasetCreateFromSampledColumn(
            (doubles * len(values))(*(v.ctypes.data_as(doubles) for v in values)),
            (ints * len(positions))(*(p.ctypes.data_as(ints) for p in positions)),
            ctypes.c_int32(len(values)),
            np.array([len(v) for v in values], dtype=np.int32).ctypes.data_as(ints),
            ctypes.c_int32(len(sample)),
            ctypes.c_int32(1),
            ctypes.c_int64(total_rows),
            _c_str(_param_dict_to_str(config)),
            ctypes.byref(bins._handle),
        )
    )
    return bins


def _dataset(parts: list[Prepared], params: dict[str, Any], categorical: list[int], reference: Any = None) -> Any:
    """A LightGBM Dataset over a worker's partitions, built from the list (no concatenated copy)."""
    import lightgbm as lgb

    def joined(name: str) -> np.ndarray | None:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else np.concatenate(values)

    matrices = [p.X for p in parts]
    return lgb.Dataset(
        matrices if len(matrices) > 1 else matrices[0],
        label=joined("y"),
        weight=joined("weight"),
        group=joined("group"),
        categorical_feature=categorical or "auto",
        params=params,
        reference=reference,
    )


def _fit_on_worker(
    params: dict[str, Any],
    parts: list[Prepared],
    sample: list[np.ndarray],
    total_rows: int,
    valid: list[Prepared],
    rounds: int,
    categorical: list[int],
    port: _Port | None,
    main: bool,
) -> dict[str, Any] | None:
    """One worker's share of the training; the main worker returns the model and the validation curves."""
    import lightgbm as lgb

    quiet = logging.getLogger("mltk.lightgbm.network")
    quiet.setLevel(logging.ERROR)  # LightGBM logs its socket handshake before it reads verbose=-1
    lgb.register_logger(quiet)
    started = time.perf_counter()
    bins = shared_bins(np.concatenate(sample), total_rows, params, categorical)
    dtrain = _dataset(parts, params, categorical, reference=bins).construct()
    valid_sets = [_dataset(valid, params, categorical, reference=dtrain).construct()] if valid else []
    built = time.perf_counter()
    evals: dict[str, Any] = {}
    if port is not None:
        port.release()
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        valid_sets=valid_sets,
        valid_names=["valid"],
        callbacks=[lgb.record_evaluation(evals)],
    )
    booster.free_network()
    if not main:
        return None
    return {
        "model": booster.model_to_string(num_iteration=-1),
        "best_iteration": booster.best_iteration,
        "best_score": {k: float(v) for k, v in booster.best_score.get("valid", {}).items()},
        "evals": evals.get("valid", {}),
        "seconds": {"datasets": built - started, "boosting": time.perf_counter() - built},
    }


def fit(
    client: Client,
    params: dict[str, Any],
    parts: list[Future],
    valid: list[Future],
    rounds: int,
    early_stopping: int,
    schema: Schema,
) -> tuple[Any, dict[str, Any]]:
    """Train on the workers that hold ``parts``, each evaluating all of ``valid``: the model and its curves."""
    from urllib.parse import urlparse

    import lightgbm as lgb

    holders = client.who_has(parts)
    by_worker: dict[str, list[Future]] = {}
    for part in parts:
        by_worker.setdefault(next(iter(holders[part.key])), []).append(part)
    workers = list(by_worker)
    params = {**params, "tree_learner": params.get("tree_learner", "data")}
    if valid and early_stopping > 0:
        params.setdefault("early_stopping_round", early_stopping)
    ports: dict[str, Future] = {}
    numbers: dict[str, int] = {}
    if len(workers) > 1:
        ports = {w: client.submit(_Port, workers=[w], allow_other_workers=False, pure=False) for w in workers}
        numbers = client.gather({w: client.submit(operator.attrgetter("number"), p) for w, p in ports.items()})
        machines = ",".join(f"{urlparse(w).hostname}:{numbers[w]}" for w in workers)
        params.update(machines=machines, num_machines=len(workers))
    sample, total_rows = _bin_sample(client, parts, params)
    nthreads = client.nthreads()
    futures = [
        client.submit(
            _fit_on_worker,
            {**params, "num_threads": nthreads[w], **({"local_listen_port": numbers[w]} if numbers else {})},
            by_worker[w],
            sample,
            total_rows,
            valid,
            rounds,
            schema.categorical_indices,
            ports.get(w),
            w == workers[0],
            workers=[w],
            allow_other_workers=False,
            pure=False,
        )
        for w in workers
    ]
    info(f"dask: training on {len(workers)} worker(s), {len(parts)} part(s)")
    result = _gather_watching(client, futures, workers)[0]
    seconds = result["seconds"]
    info(f"dask: bins and Datasets built in {seconds['datasets']:.1f} s, boosted in {seconds['boosting']:.1f} s")
    return lgb.Booster(model_str=result["model"]), result


class WorkerLost(Exception):
    """A worker that held training data left the cluster while LightGBM was training."""


def _gather_watching(client: Client, futures: list[Future], workers: list[str]) -> list[Any]:
    """Wait for the training tasks; a worker leaving mid-training fails the run instead of hanging it."""
    from distributed import wait

    while True:
        try:
            wait(futures, timeout=WATCH_S)
        except TimeoutError:
            gone = sorted(set(workers) - set(client.nthreads()))
            if gone:
                client.cancel(futures)
                raise WorkerLost(f"worker {gone[0]} left the cluster") from None
            if not any(f.status == "error" for f in futures):
                continue
        return client.gather(futures)  # raises the first task's error, if any


def lost_worker(exc: BaseException) -> str | None:
    """Why training lost a worker, when that is what ``exc`` says (Dask's or LightGBM's network)."""
    from distributed import KilledWorker
    from distributed.comm import CommClosedError
    from lightgbm.basic import LightGBMError

    if isinstance(exc, (WorkerLost, KilledWorker, CommClosedError)):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, LightGBMError) and any(word in str(exc) for word in ("Socket", "socket", "Network", "connect")):
        return f"LightGBM: {str(exc).splitlines()[0]}"
    return None


def _fit_or_fail(run: Run, *args: Any) -> tuple[Any, dict[str, Any]]:
    """``fit``, with a lost worker marking the run failed (exit 4) and LightGBM's refusals as bad data."""
    from lightgbm.basic import LightGBMError

    try:
        return fit(*args)
    except Exception as exc:
        reason = lost_worker(exc)
        if reason is not None:
            error = f"a Dask worker failed during training: {reason}"
            run.write_summary({**run.read_summary(), "status": "failed", "error": error})
            message = f"a Dask worker failed during training ({reason}); {run.path} is marked failed"
            raise ResourceError(message) from None
        if isinstance(exc, LightGBMError):
            raise DataError(f"LightGBM rejected the data or parameters: {exc}") from None
        raise


def _sizes(client: Client, parts: list[Future]) -> list[int]:
    return client.gather([client.submit(operator.attrgetter("rows"), p) for p in parts])


def train_on_cluster(
    cfg: BoostConfig, *, runs_dir: str | Path = "runs", name: str | None = None, resume: str | None = None
) -> TrainResult:
    """``train`` on a Dask cluster: the same schema, validation, refit, run directory and result as on one machine.

    Not here: ``--tune``, ``--cv`` and ``--resume`` (each would repeat a cluster-wide pass per trial or
    fold; a cluster run is restarted instead), and LightGBM side files (use columns).
    """
    from mltoolkit.boost.finish import default_name, finish_run

    for flag, used in (("--resume", resume), ("--tune", cfg.tune), ("--cv", cfg.cv)):
        if used:
            raise UsageError(f"{flag} is not available with --dask")
    started = time.perf_counter()
    files = list_parts(cfg.data)
    valid_files = list_parts(cfg.valid) if cfg.valid else None
    with connect(cfg.dask) as client:
        frame, sample = read_parts(files)
        schema, sizes = infer_schema(sample, files, cfg)
        rows = sum(sizes)
        params = lightgbm_params(cfg, schema.task, len(schema.classes or []), threads=1)
        seed = cfg.seed if cfg.seed is not None else 0
        fraction = 0 if valid_files else cfg.valid_fraction
        dtype = feature_dtype(client, rows, len(schema.features))
        train_parts, valid_parts = encode_parts(client, frame, files, sizes, schema, fraction, seed, dtype)
        if valid_files:
            valid_frame = read_parts(valid_files)[0]
            valid_parts = encode_parts(client, valid_frame, valid_files, [], schema, 0, seed, dtype)[0]
        run, _ = start_run(
            BOOST.name, config_dict(cfg), name=name or default_name(files[0]), runs_dir=runs_dir, device="cpu",
            seed=cfg.seed,
        )  # fmt: skip
        info(f"run: {run.path}  ({rows} rows in {len(files)} part(s), {len(schema.features)} features)")
        validation = f"--valid {cfg.valid}" if valid_files else f"{fraction:g} split" if valid_parts else "none"
        rounds, stopping = cfg.num_rounds, cfg.early_stopping
        booster, fitted = _fit_or_fail(run, client, params, train_parts, valid_parts, rounds, stopping, schema)
        for index, values in enumerate(zip(*fitted["evals"].values())):
            run.log({"round": index + 1, **{f"valid_{k}": v for k, v in zip(fitted["evals"], values)}})
        best_round = fitted["best_iteration"] or booster.current_iteration()
        if cfg.refit and not valid_files and valid_parts:
            # As on one machine: the split chose the number of rounds; the final model learns from every row.
            best_round = max(1, round(best_round * rows / sum(_sizes(client, train_parts))))
            info(f"refit on all {rows} rows for {best_round} rounds (best round on the split, scaled)")
            run.write_summary({"status": "refitting", "valid": fitted["best_score"]})
            refit = {k: v for k, v in params.items() if k != "early_stopping_round"}
            booster, _ = _fit_or_fail(run, client, refit, train_parts + valid_parts, [], best_round, 0, schema)
    extra = {"task": schema.task, "validation": validation}
    wall_time_s = time.perf_counter() - started
    return finish_run(run, booster, schema, params, best_round, fitted["best_score"], wall_time_s, extra)


def _score_part(
    model: Any, path: str, target: str | None, fmt: str, proba: bool, explain: bool, client_pid: int
) -> tuple[int, bytes]:
    """Score one part on a worker through the predictor ``boost predict`` uses (the same records): into
    ``target``, or returned as bytes for the client to print in order."""
    from distributed import get_worker

    from mltoolkit.boost.score import BoostPredictor, write_predictions
    from mltoolkit.core.console import set_quiet

    if os.getpid() != client_pid:  # a worker process: the client says what was scored, once
        set_quiet(True)
    predictor = BoostPredictor(model, get_worker().state.nthreads)
    if target is not None:
        return write_predictions(predictor, path, output=target, fmt=fmt, proba=proba, explain=explain), b""
    with tempfile.TemporaryDirectory(prefix="mltk-score-") as tmp:
        out = Path(tmp) / f"part.{fmt}"
        rows = write_predictions(predictor, path, output=out, fmt=fmt, proba=proba, explain=explain)
        return rows, out.read_bytes()


def predict_on_cluster(
    run: str | Path,
    data: str,
    spec: str,
    *,
    output: str | Path | None = None,
    fmt: str = "csv",
    proba: bool = False,
    explain: bool = False,
    runs_dir: str | Path = "runs",
) -> int:
    """Score every part of ``data`` on the workers: one output file per part in the folder ``output``,
    or all parts to stdout in input order (one CSV header)."""
    from mltoolkit.boost.score import load_model

    if fmt not in ("csv", "jsonl"):
        raise DataError(f"unknown --format {fmt!r}; expected csv or jsonl")
    model = load_model(run, runs_dir)
    files = list_parts(data)
    targets: list[str | None] = [None] * len(files)
    if output is not None:
        folder = Path(output)
        if folder.is_file():
            raise DataError(f"{folder}: with --dask, --output is a folder (one file per part), not a file")
        targets = [str(folder / f"{Path(f).name.split('.')[0]}.{fmt}") for f in files]
        if len(set(targets)) < len(targets):
            raise DataError(f"{data}: two parts have the same name; their outputs in {folder} would collide")
        folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with connect(spec) as client:
        shared = client.scatter(model, broadcast=True)
        futures = [
            client.submit(_score_part, shared, f, t, fmt, proba, explain, os.getpid(), pure=False)
            for f, t in zip(files, targets)
        ]
        for index, future in enumerate(futures):
            rows, text = future.result()
            futures[index] = None  # let the worker drop what is already printed
            count += rows
            if output is None:
                sys.stdout.flush()
                sys.stdout.buffer.write(text.split(b"\n", 1)[1] if index and fmt == "csv" else text)
                sys.stdout.buffer.flush()
    info(f"scored {count} rows in {len(files)} part(s) with {model.path}")
    return count
