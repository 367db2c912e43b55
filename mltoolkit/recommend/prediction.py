"""``load(run)``: a run's served model as the Predictor that ``mltk recommend predict`` and ``mltk serve`` use.

``predict`` takes user ids (known users) and ``{"history": [item, ...]}`` records (users not in
training) and returns, for each input in order, its top-n records ``user, rank, item, score``
(+ ``because``): exactly the lines ``predict --format jsonl`` prints. Unknown users get the popular
items (with a warning), or stop the call with ``strict``. ``similar`` lists items like given items.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.console import warn
from mltoolkit.core.contract import provenance
from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.io import chunks
from mltoolkit.core.runs import resolve_run
from mltoolkit.recommend.data import confidence
from mltoolkit.recommend.store import MODEL_FILE, Bundle, checkpoint, load_bundle
from mltoolkit.techniques import RECOMMEND

if TYPE_CHECKING:
    import scipy.sparse as sp

BATCH = 1000  # users scored per block: a million-user request needs no million-row score matrix
EXPLAIN_ITEMS = 3  # history items listed per recommendation with explain
NEW_USER = "new"  # the user field of a history record that names no user
_WARN_LIMIT = 5
_RECORDS = 'a user id, or {"history": [item, ...]} (optional "user" name and "ratings")'

History = tuple[str, list[str], list[float]]  # (user name, items, ratings) of a user not in training


def load(
    run: str | Path, *, runs_dir: str | Path = "runs", device: str = "auto", threads: int | None = None
) -> Recommendations:
    """The served model of a run: a run directory, ``latest``, a name under ``runs_dir``, or a model.npz alone.

    Recommendations are scored on the CPU whatever ``device`` says: a model fitted on CUDA is saved from
    host memory, and a top-n over one block of users is no work for a GPU. ``threads`` None: the run's.
    """
    path = resolve_run(run, runs_dir, RECOMMEND.name)
    run_dir = path if path.is_dir() else None
    if run_dir is not None:
        path = checkpoint(run_dir, MODEL_FILE)
    elif path.parent.name == "checkpoints" and (path.parent.parent / "config.json").is_file():
        run_dir = path.parent.parent  # resolve_run refused it if it belongs to another technique's run
    bundle, config = load_bundle(path, threads)
    return Recommendations(bundle, config, run_dir)


class Recommendations:
    """A fitted recommender (the contract's Predictor): top-n for users and histories, similar items."""

    technique = RECOMMEND.name

    def __init__(self, bundle: Bundle, config: dict[str, Any], run_dir: Path | None) -> None:
        self.bundle, self.config, self.run_dir = bundle, config, run_dir

    def predict(
        self, batch: Sequence[Any], *, n: int = 10, include_seen: bool = False, strict: bool = False,
        explain: bool = False,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """The top-``n`` records of each input in order; ``explain`` adds the history items behind each."""
        model = self.bundle.model
        n = self.bundle.capped(_positive(n))
        if explain and not model.supports_explain:
            raise UsageError(f"--explain is not supported by {model.name}; use als, cosine, bm25, tfidf or ease")
        users, histories = _parse(batch)
        if histories and not model.supports_history:
            raise UsageError(f"--history is not supported by {model.name}; use als, cosine, bm25, tfidf or ease")
        options = {"include_seen": include_seen, "strict": strict, "explain": explain}
        kind, alpha = self.config["confidence"], self.config["alpha"]
        # both generators run to their end, where they sum up the unknown ids in one warning
        found = list(_for_users(self.bundle, list(users.values()), n, **options))
        found += _for_histories(self.bundle, list(histories.values()), n, kind, alpha, **options)
        by_position = dict(zip([*users, *histories], found))
        return [record for position in range(len(batch)) for record in by_position[position]]

    def similar(self, items: Sequence[Any], n: int = 10, *, strict: bool = False) -> list[dict[str, Any]]:
        """Records ``item, rank, similar, score``: the ``n`` items most like each known item."""
        n = self.bundle.capped(_positive(n))
        index = self.bundle.item_index
        records = []
        for item in map(str, items):
            if item not in index:
                if strict:
                    raise DataError(f"unknown item {item!r} (--strict)")
                warn(f"unknown item {item!r}: no similar items")
                continue
            ids, scores = self.bundle.model.similar_items(index[item], n)
            ids, scores = np.ravel(ids), np.ravel(scores)
            found = [(str(self.bundle.items[i]), float(s)) for i, s in zip(ids, scores) if i >= 0]
            records += [{"item": item, "rank": r, "similar": o, "score": s} for r, (o, s) in enumerate(found, start=1)]
        return records

    def metadata(self) -> dict[str, Any]:
        model = self.bundle.model
        return {
            **provenance(self.technique, self.run_dir),
            "model": self.config["model"],
            "users": len(self.bundle.users),
            "items": len(self.bundle.items),
            "input": _RECORDS,
            "output": ["user", "rank", "item", "score"] + (["because"] if model.supports_explain else []),
            "options": {"n": 10, "include_seen": False, "strict": False, "explain": False},
            "supports": {
                "history": model.supports_history,
                "explain": model.supports_explain,
                "similar": model.supports_similar,
            },
        }


def _positive(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"n must be a whole number >= 1 (got {n!r})")
    return int(n)


def _parse(batch: Sequence[Any]) -> tuple[dict[int, str], dict[int, History]]:
    """Split a batch into user ids and histories, each keyed by its position; a bad record is a DataError."""
    if isinstance(batch, (str, bytes, dict)):
        raise DataError(f"predict takes a list of records ({_RECORDS} each), not one {type(batch).__name__}")
    users: dict[int, str] = {}
    histories: dict[int, History] = {}
    for position, record in enumerate(batch):
        if isinstance(record, (str, int, np.integer)) and not isinstance(record, bool):
            users[position] = str(record)
        elif isinstance(record, dict) and set(record) <= {"history", "user", "ratings"} and "history" in record:
            histories[position] = _history(position, record)
        else:
            raise DataError(f"record {position}: expected {_RECORDS}; got {_shown(record)}")
    return users, histories


def _history(position: int, record: dict[str, Any]) -> History:
    items, user = record["history"], record.get("user", NEW_USER)
    ratings = record.get("ratings", [1.0] * len(items) if isinstance(items, (list, tuple)) else None)
    fits = (
        isinstance(items, (list, tuple)) and all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in items)
        and isinstance(ratings, (list, tuple)) and len(ratings) == len(items)
        and all(isinstance(r, (int, float)) and not isinstance(r, bool) and np.isfinite(r) for r in ratings)
        and isinstance(user, (str, int)) and not isinstance(user, bool)
    )  # fmt: skip
    if not fits:
        raise DataError(
            f"record {position}: expected a list of item ids as history (and as many finite ratings, a text user); "
            f"got {_shown(record)}"
        )
    return str(user), [str(i) for i in items], [float(r) for r in ratings]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Unknown:
    """Warns about the first few unknown ids and counts the rest (a warning per id would flood stderr)."""

    def __init__(self, kind: str, strict: bool, fallback: str) -> None:
        self.kind, self.strict, self.fallback, self.count = kind, strict, fallback, 0

    def __call__(self, value: str) -> None:
        if self.strict:
            raise DataError(f"unknown {self.kind} {value!r} (--strict)")
        self.count += 1
        if self.count <= _WARN_LIMIT:
            warn(f"unknown {self.kind} {value!r}: {self.fallback}")

    def close(self) -> None:
        if self.count > _WARN_LIMIT:
            warn(f"{self.count} unknown {self.kind}s in all ({self.fallback})")


def _for_users(
    bundle: Bundle, users: list[str], n: int, *, include_seen: bool, strict: bool, explain: bool
) -> Iterator[list[dict[str, Any]]]:
    """The records of each user in turn: the model's for known users, popularity's for the rest."""
    index = bundle.user_index
    unknown = _Unknown("user", strict, "recommending popular items")
    for batch in chunks(users, BATCH):
        rows = np.array([index.get(u, -1) for u in batch])
        known = rows >= 0
        for user in (u for u, k in zip(batch, known) if not k):
            unknown(user)
        ids = np.full((len(batch), n), -1)
        scores = np.full((len(batch), n), -np.inf)
        if known.any():
            seen = bundle.user_items[rows[known]]
            ids[known], scores[known] = bundle.model.recommend(rows[known], seen, n, filter_seen=not include_seen)
        if (~known).any():
            empty = _empty_rows(int((~known).sum()), bundle.user_items.shape[1])
            ids[~known], scores[~known] = bundle.popularity.recommend_new(empty, n)
        for position, user in enumerate(batch):
            history = bundle.user_items[rows[position]] if known[position] else None
            yield _records(bundle, user, ids[position], scores[position], history, explain)
    unknown.close()


def _for_histories(
    bundle: Bundle, histories: list[History], n: int, kind: str, alpha: float, *, include_seen: bool, strict: bool,
    explain: bool,
) -> Iterator[list[dict[str, Any]]]:  # fmt: skip
    """The records of each history in turn, scored as the model scores a user not in training."""
    import scipy.sparse as sp

    if not histories:
        return
    index = bundle.item_index
    unknown = _Unknown("item", strict, "ignored in the history")
    rows, cols, values = [], [], []
    for row, (_, items, ratings) in enumerate(histories):
        for item, rating in zip(items, ratings):
            if item in index:
                rows.append(row)
                cols.append(index[item])
                values.append(rating)
            else:
                unknown(item)
    unknown.close()
    shape = (len(histories), bundle.user_items.shape[1])
    ratings = sp.csr_matrix((np.asarray(values, np.float32), (rows, cols)), shape=shape)
    ratings.sum_duplicates()
    history = confidence(ratings, kind, alpha)
    empty = np.diff(history.indptr) == 0
    for row in np.flatnonzero(empty):
        if strict:
            raise DataError(f"history of {histories[row][0]!r} has no item the model knows (--strict)")
        warn(f"history of {histories[row][0]!r} has no known item: recommending popular items")
    ids, scores = bundle.popularity.recommend_new(history, n, filter_seen=not include_seen)
    if (~empty).any():
        chosen = np.flatnonzero(~empty)
        ids[chosen], scores[chosen] = bundle.model.recommend_new(history[chosen], n, filter_seen=not include_seen)
    for row, (user, _, _) in enumerate(histories):
        yield _records(bundle, user, ids[row], scores[row], None if empty[row] else history[row], explain)


def _records(
    bundle: Bundle, user: str, ids: np.ndarray, scores: np.ndarray, history: sp.csr_matrix | None, explain: bool
) -> list[dict[str, Any]]:
    """One record per filled slot; ``because`` (with explain) lists the history items that drove it."""
    records = []
    for item, score in zip(ids, scores):
        if item < 0:
            continue
        record: dict[str, Any] = {
            "user": user, "rank": len(records) + 1, "item": str(bundle.items[item]), "score": float(score)
        }  # fmt: skip
        if explain:  # a popularity fallback has no history: an empty list keeps every record's columns alike
            drivers = bundle.model.explain(history, int(item), EXPLAIN_ITEMS) if history is not None else []
            record["because"] = [str(bundle.items[i]) for i, _ in drivers]
        records.append(record)
    return records


def _empty_rows(count: int, items: int) -> sp.csr_matrix:
    import scipy.sparse as sp

    return sp.csr_matrix((count, items), dtype=np.float32)
