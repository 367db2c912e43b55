"""recommend: the fitted model's arrays with their string ids, ready for an approximate-nearest-neighbour
index or plain numpy.

- als, bpr: ``user_factors`` (users x k) and ``item_factors`` (items x k); a user's scores are
  ``user_factors[u] @ item_factors.T`` (BPR's last factor column carries its item bias).
- ease: ``item_item`` (items x items); a user's scores are ``binary history @ item_item``.
- cosine, bm25, tfidf: the sparse ``item_item`` similarities (npz only); scores are ``history @ item_item``.

The npz also holds ``user_items``, the training interactions (CSR), to score from and to filter seen
items; the parquet file is one row per vector: ``kind`` (user/item), ``id``, ``vector``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.io import atomic_path
from mltoolkit.export import parity
from mltoolkit.export.request import Request

FACTORS, DENSE, SPARSE = ("als", "bpr"), ("ease",), ("cosine", "bm25", "tfidf")
SAMPLE_USERS, TOP = 64, 10


def load(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The run's fitted bundle and config (the one line to change for the coming ``recommend.load(run)``)."""
    from mltoolkit.recommend.serving import load_served

    return load_served(str(run_dir), run_dir.parent, threads=1)


def export(request: Request) -> dict[str, Any]:
    if request.half or request.batch is not None:
        raise UsageError("--half and --batch are for model graphs; npz and parquet hold plain arrays")
    bundle, config = load(request.run_dir)
    model = config["model"]
    if model not in FACTORS + DENSE + SPARSE or (request.fmt == "parquet" and model in SPARSE):
        can = "als, bpr, ease (npz, parquet); cosine, bm25, tfidf (npz)"
        raise DataError(f"a {model} model cannot be exported as {request.fmt}; exportable: {can}")
    arrays = model_arrays(bundle, model)
    with atomic_path(request.output) as tmp:
        (_write_npz if request.fmt == "npz" else _write_parquet)(tmp, arrays)
        written = read_npz(tmp) if request.fmt == "npz" else read_parquet(tmp, arrays)
        checks = {"users": _check(bundle, written)}
        parity.check(checks, False, f"recommend {model} {request.fmt}")
    shapes = {k: list(v.shape) for k, v in arrays.items() if k.endswith(("factors", "item_item"))}
    return {"parity": checks, "metadata": {"model": model, "arrays": shapes}}


def model_arrays(bundle: Any, model: str) -> dict[str, np.ndarray]:
    """The arrays a consumer scores with, named for what they are, plus the ids and the interactions."""
    state = bundle.model.state()
    seen = bundle.user_items.tocsr()
    arrays = {
        "model": np.asarray(model),
        "user_ids": np.asarray([str(u) for u in bundle.users]),
        "item_ids": np.asarray([str(i) for i in bundle.items]),
        **_csr_arrays("user_items", seen),
    }
    if model in FACTORS:
        arrays["user_factors"] = np.asarray(state["user_factors"], np.float32)
        arrays["item_factors"] = np.asarray(state["item_factors"], np.float32)
    elif model in DENSE:
        arrays["item_item"] = np.asarray(state["weights"], np.float32)
    else:
        arrays.update({f"item_item_{k.removeprefix('sim_')}": v for k, v in state.items()})
    return arrays


def _csr_arrays(name: str, matrix: Any) -> dict[str, np.ndarray]:
    return {f"{name}_{key}": np.asarray(getattr(matrix, key)) for key in ("data", "indices", "indptr", "shape")}


def csr(arrays: dict[str, np.ndarray], name: str) -> Any:
    import scipy.sparse as sp

    parts = [arrays[f"{name}_{key}"] for key in ("data", "indices", "indptr")]
    return sp.csr_matrix(tuple(parts), shape=tuple(arrays[f"{name}_shape"]))


def scores(arrays: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Every item's score for the users at ``rows``, from the exported arrays alone (numpy and scipy)."""
    if "user_factors" in arrays:
        return arrays["user_factors"][rows] @ arrays["item_factors"].T
    history = csr(arrays, "user_items")[rows]
    if "item_item" in arrays:
        history.data = np.ones_like(history.data)  # EASE reads 0/1
        return np.asarray(history @ arrays["item_item"])
    return np.asarray((history @ csr(arrays, "item_item")).todense())


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as loaded:
        return {key: loaded[key] for key in loaded.files}


def _write_parquet(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """One row per vector: users' factor rows (factor models), then items' rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    blocks = [("item", arrays["item_ids"], arrays.get("item_factors", arrays.get("item_item")))]
    if "user_factors" in arrays:
        blocks.insert(0, ("user", arrays["user_ids"], arrays["user_factors"]))
    kinds = [kind for kind, ids, _ in blocks for _ in ids]
    ids = [str(i) for _, block_ids, _ in blocks for i in block_ids]
    vectors = np.concatenate([matrix for _, _, matrix in blocks])
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), vectors.shape[1])
    table = pa.table({"kind": kinds, "id": ids, "vector": column})
    table = table.replace_schema_metadata({"mltk_model": str(arrays["model"])})
    pq.write_table(table, path)


def read_parquet(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The vectors back from the parquet file, keyed as in the npz (history from ``arrays``: not in the file)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path).to_pydict()
    kinds = np.asarray(table["kind"])
    vectors = np.asarray(table["vector"], dtype=np.float32)
    back = {k: v for k, v in arrays.items() if k.startswith("user_items") or k.endswith("_ids")}
    if "user_factors" in arrays:
        back["user_factors"], back["item_factors"] = vectors[kinds == "user"], vectors[kinds == "item"]
    else:
        back["item_item"] = vectors[kinds == "item"]
    return back


def _check(bundle: Any, written: dict[str, np.ndarray]) -> dict[str, Any]:
    """Numpy scores of the exported arrays against the model's own top items for the first users with history."""
    seen = bundle.user_items.tocsr()
    rows = np.flatnonzero(np.diff(seen.indptr))[:SAMPLE_USERS]
    if not len(rows):
        raise DataError("the run has no user with interactions to check the export on")
    ids, expected = bundle.model.recommend(rows, seen[rows], TOP, filter_seen=True)
    computed = scores(written, rows).astype(np.float64)
    seen_rows = seen[rows]
    computed[seen_rows.nonzero()] = -np.inf
    valid = ids >= 0
    at_ids = np.take_along_axis(computed, np.where(valid, ids, 0), axis=1)
    diff = float(np.abs(np.where(valid, at_ids - expected, 0.0)).max(initial=0.0))
    scale = max(1.0, float(np.abs(np.where(valid, expected, 0.0)).max(initial=0.0)))
    top2 = np.sort(computed, axis=1)[:, -2:]
    equal = computed.argmax(1) == ids[:, 0]
    flips = ~equal & (top2[:, 1] - top2[:, 0] > parity.TOLERANCE * scale)
    return {
        "samples": len(rows),
        "max_abs_diff": diff,
        "relative_diff": diff / scale,
        "argmax_equal": float(equal.mean()),
        "argmax_flips": int(flips.sum()),
    }
