"""``predict()``: top-n records for known users, for new users' histories, or similar items.

Records stream out as they are computed, in batches of users so a million-user file needs no
million-row score matrix. Unknown users get the popular items (with a warning), or stop the run
with ``strict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.console import warn
from mltoolkit.core.errors import DataError
from mltoolkit.recommend.data import confidence
from mltoolkit.recommend.store import Bundle

if TYPE_CHECKING:
    import scipy.sparse as sp

BATCH = 1000
EXPLAIN_ITEMS = 3  # history items listed per recommendation with --explain
_WARN_LIMIT = 5


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


def recommend_users(
    bundle: Bundle, users: Iterable[str], n: int, *, include_seen: bool = False, strict: bool = False,
    explain: bool = False,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Records ``user, rank, item, score`` (+ ``because``) for known users; popularity for the rest."""
    n = bundle.capped(n)
    index = bundle.user_index()
    unknown = _Unknown("user", strict, "recommending popular items")
    users = iter(users)
    while batch := list(islice(users, BATCH)):
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
            yield from _records(bundle, user, ids[position], scores[position], history, explain)
    unknown.close()


def recommend_histories(
    bundle: Bundle, histories: list[tuple[str, list[str], list[float]]], n: int, *, confidence_kind: str,
    alpha: float, include_seen: bool = False, strict: bool = False, explain: bool = False,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Records for users not in training, scored from their histories ``(user, items, ratings)``."""
    import scipy.sparse as sp

    n = bundle.capped(n)
    index = bundle.item_index()
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
    history = confidence(ratings, confidence_kind, alpha)
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
        yield from _records(bundle, user, ids[row], scores[row], None if empty[row] else history[row], explain)


def similar_items(bundle: Bundle, items: Iterable[str], n: int, strict: bool = False) -> Iterator[dict[str, Any]]:
    """Records ``item, rank, similar, score`` for each known item."""
    n = bundle.capped(n)
    index = bundle.item_index()
    for item in items:
        if item not in index:
            if strict:
                raise DataError(f"unknown item {item!r} (--strict)")
            warn(f"unknown item {item!r}: no similar items")
            continue
        ids, scores = bundle.model.similar_items(index[item], n)
        ids, scores = np.ravel(ids), np.ravel(scores)
        for rank, (other, score) in enumerate(((i, s) for i, s in zip(ids, scores) if i >= 0), start=1):
            yield {"item": item, "rank": rank, "similar": str(bundle.items[other]), "score": float(score)}


def _records(
    bundle: Bundle, user: str, ids: np.ndarray, scores: np.ndarray, history: sp.csr_matrix | None, explain: bool
) -> Iterator[dict[str, Any]]:
    """One record per filled slot; ``because`` (with explain) lists the history items that drove it."""
    rank = 0
    for item, score in zip(ids, scores):
        if item < 0:
            continue
        rank += 1
        record: dict[str, Any] = {"user": user, "rank": rank, "item": str(bundle.items[item]), "score": float(score)}
        if explain:  # a popularity fallback has no history: an empty list keeps every record's columns alike
            drivers = bundle.model.explain(history, int(item), EXPLAIN_ITEMS) if history is not None else []
            record["because"] = [str(bundle.items[i]) for i, _ in drivers]
        yield record


def _empty_rows(count: int, items: int) -> sp.csr_matrix:
    import scipy.sparse as sp

    return sp.csr_matrix((count, items), dtype=np.float32)
