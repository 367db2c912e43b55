"""Saving and loading a fitted recommender: ``model.npz``, arrays only (no pickle), complete on its own.

The npz holds the model's arrays, the confidence matrix it was fitted on (which items each user
has already seen, and the history ALS/kNN/EASE score from), item popularity (the fallback for
unknown users), the ids of the matrix rows and columns, and the run's config as JSON: the file
alone is enough to serve, copied anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.errors import DataError, MltkError
from mltoolkit.core.io import atomic_write
from mltoolkit.recommend.config import MODELS, model_params
from mltoolkit.recommend.models import Popularity, Recommender, build_model, limit_blas, thread_count

if TYPE_CHECKING:
    import scipy.sparse as sp

# All under the run's checkpoints/ (docs/run-directory.md).
MODEL_FILE, EVAL_MODEL_FILE, SPLIT_FILE = "model.npz", "model-eval.npz", "split.npz"


def checkpoint(run_dir: Path, file: str) -> Path:
    return run_dir / "checkpoints" / file


@dataclass
class Bundle:
    """A fitted model with everything predict needs: seen items, popularity, ids."""

    model: Recommender
    user_items: sp.csr_matrix
    popularity: Popularity
    users: np.ndarray
    items: np.ndarray

    @cached_property
    def user_index(self) -> dict[str, int]:
        """Row of each user id (built once: predict looks ids up batch after batch)."""
        return {str(u): i for i, u in enumerate(self.users)}

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {str(v): i for i, v in enumerate(self.items)}

    def capped(self, n: int) -> int:
        """``n`` results per request at most as many as there are items: a typed -n never sizes an allocation."""
        return min(n, len(self.items))


def _csr_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_data": matrix.data,
        f"{prefix}_indices": matrix.indices,
        f"{prefix}_indptr": matrix.indptr,
        f"{prefix}_shape": np.asarray(matrix.shape),
    }


def _csr(prefix: str, arrays: Any) -> sp.csr_matrix:
    import scipy.sparse as sp

    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=tuple(arrays[f"{prefix}_shape"]),
    )


def save_bundle(path: Path, bundle: Bundle, config: dict[str, Any]) -> None:
    arrays = {f"model_{k}": np.asarray(v) for k, v in bundle.model.state().items()}
    arrays.update(_csr_arrays("user_items", bundle.user_items))
    arrays["popularity"] = bundle.popularity.counts
    arrays["user_ids"] = np.asarray([str(u) for u in bundle.users])
    arrays["item_ids"] = np.asarray([str(i) for i in bundle.items])
    arrays["config"] = np.asarray(json.dumps(config))
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_bundle(path: Path, threads: int | None = None) -> tuple[Bundle, dict[str, Any]]:
    """Rebuild a fitted model and its config from its npz alone; a missing or damaged file is a DataError
    naming it. ``threads`` None: the config's."""
    if not path.is_file():
        raise DataError(f"{path}: not found; is {path.parent.parent} a finished recommend run?")
    with _reading(path):
        with np.load(path, allow_pickle=False) as arrays:
            config = _config(str(arrays["config"]))
            users, items = arrays["user_ids"], arrays["item_ids"]
            state = {k.removeprefix("model_"): arrays[k] for k in arrays.files if k.startswith("model_")}
            user_items = _csr("user_items", arrays)
            counts = arrays["popularity"]
        if users.ndim != 1 or items.ndim != 1 or user_items.shape != (len(users), len(items)):
            raise ValueError(
                f"its matrix is {user_items.shape[0]} x {user_items.shape[1]} for {users.size} user and "
                f"{items.size} item ids"
            )
        count = thread_count(threads if threads is not None else config.get("threads"))
        limit_blas(config["model"], count)
        model = build_model(config["model"], model_params(config), count, config["seed"])
        model.load_state(state, user_items.shape)
        popularity = Popularity({}, 1, 0)
        popularity.load_state({"counts": counts}, user_items.shape)
    return Bundle(model, user_items, popularity, users, items), config


def _config(text: str) -> dict[str, Any]:
    config = json.loads(text)
    if not isinstance(config, dict) or config.get("model") not in MODELS:
        raise ValueError(f"its config names no model (expected one of {', '.join(MODELS)})")
    return config


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """The errors of a damaged npz become one line naming it. They come in many kinds (zipfile's BadZipFile,
    numpy's ValueError or tokenize error on an overwritten header, KeyError for a missing array...)."""
    try:
        yield
    except MltkError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: corrupt model file ({type(exc).__name__}: {exc}); train the run again") from None


def save_split(run_dir: Path, train: sp.csr_matrix, test: sp.csr_matrix) -> None:
    with atomic_write(checkpoint(run_dir, SPLIT_FILE), "wb") as handle:
        np.savez(handle, **_csr_arrays("train", train), **_csr_arrays("test", test))


def load_split(run_dir: Path) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    path = checkpoint(run_dir, SPLIT_FILE)
    if not path.is_file():
        raise DataError(f"{run_dir}: has no held-out split (trained with --test-fraction 0); pass DATA to evaluate on")
    with _reading(path), np.load(path, allow_pickle=False) as arrays:
        return _csr("train", arrays), _csr("test", arrays)
