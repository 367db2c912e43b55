"""Holding out interactions for evaluation: random per interaction (implicit's own split) or temporal.

The random split is ``implicit.evaluation.train_test_split`` itself, so ``--seed 42`` holds out
exactly what the implicit benchmark protocol holds out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mltoolkit.core.errors import DataError

if TYPE_CHECKING:
    import scipy.sparse as sp


def split(
    ratings: sp.csr_matrix, times: sp.csr_matrix | None, fraction: float, kind: str, seed: int
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix | None]:
    """``(train, test, train_times)``: ``fraction`` of the interactions held out."""
    if kind == "random":
        from implicit.evaluation import train_test_split

        # implicit seeds a 32-bit RandomState; --tune's folds add 1 and 2 to the largest seed
        train, test = train_test_split(ratings, train_percentage=1.0 - fraction, random_state=seed % 2**32)
        return train, test, None
    if kind == "temporal":
        if times is None:
            raise DataError("--split temporal needs a timestamp column (found none; name it with --time-col)")
        return _temporal(ratings, times, fraction)
    raise DataError(f"unknown --split {kind!r}; expected random or temporal")


def _temporal(
    ratings: sp.csr_matrix, times: sp.csr_matrix, fraction: float
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Each user's latest ``fraction`` of interactions (at least one kept for training) go to test."""
    import scipy.sparse as sp

    r, t = ratings.tocoo(), times.tocoo()
    r_order, t_order = np.lexsort((r.col, r.row)), np.lexsort((t.col, t.row))
    rows, cols, values = r.row[r_order], r.col[r_order], r.data[r_order]
    stamps = t.data[t_order]
    if len(stamps) != len(values):
        raise DataError("internal: timestamps do not cover every rating")
    order = np.lexsort((stamps, rows))  # by user, then time
    rows, cols, values, stamps = rows[order], cols[order], values[order], stamps[order]
    counts = np.bincount(rows, minlength=ratings.shape[0])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(rows)) - starts[rows]
    held = np.minimum(np.floor(fraction * counts + 0.5), np.maximum(counts - 1, 0))
    is_test = position >= counts[rows] - held[rows]
    shape = ratings.shape

    def part(mask: np.ndarray, data: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data[mask], (rows[mask], cols[mask])), shape=shape)

    test = part(is_test, values)
    test.data[test.data < 0] = 0  # a negative rating is not a hit to score, as in implicit's random split
    test.eliminate_zeros()
    return part(~is_test, values), test, part(~is_test, stamps)
