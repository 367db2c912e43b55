"""Saving and loading a fitted recommender: ``model.npz`` (arrays only, no pickle) + ``ids.json``.

The npz holds the model's arrays, the confidence matrix it was fitted on (which items each user
has already seen, and the history ALS/kNN/EASE score from) and item popularity (the fallback for
unknown users). ``ids.json`` maps matrix rows and columns back to the ids of the data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.errors import DataError, MltkError
from mltoolkit.core.io import atomic_write, write_json
from mltoolkit.core.runs import Run
from mltoolkit.recommend.config import MODELS, model_params
from mltoolkit.recommend.models import Popularity, Recommender, build_model
from mltoolkit.techniques import RECOMMEND

if TYPE_CHECKING:
    import scipy.sparse as sp

# All under the run's checkpoints/ (docs/run-directory.md).
MODEL_FILE, EVAL_MODEL_FILE, IDS_FILE, SPLIT_FILE = "model.npz", "model-eval.npz", "ids.json", "split.npz"


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

    def user_index(self) -> dict[str, int]:
        return {str(u): i for i, u in enumerate(self.users)}

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


def save_bundle(run_dir: Path, file: str, bundle: Bundle) -> None:
    path = checkpoint(run_dir, file)
    arrays = {f"model_{k}": np.asarray(v) for k, v in bundle.model.state().items()}
    arrays.update(_csr_arrays("user_items", bundle.user_items))
    arrays["popularity"] = bundle.popularity.counts
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)


def save_ids(run_dir: Path, users: np.ndarray, items: np.ndarray) -> None:
    write_json(checkpoint(run_dir, IDS_FILE), {"users": [str(u) for u in users], "items": [str(i) for i in items]})


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A recommend run's config.json; another technique's run (an rl best.pt, a boost model.txt) is refused."""
    run = Run(run_dir)
    config = run.read_config()
    if run.technique != RECOMMEND.name:
        raise DataError(f"{run_dir}: is a {run.technique} run, not a recommend run")
    if config.get("model") not in MODELS:
        raise DataError(
            f"{run.path / 'config.json'}: corrupt run config (model {config.get('model')!r}; expected one of "
            f"{', '.join(MODELS)})"
        )
    return config


def load_bundle(run_dir: Path, config: dict[str, Any], threads: int, file: str = MODEL_FILE) -> Bundle:
    """Rebuild the fitted model of a run from its files; a missing or damaged one is a DataError naming it."""
    path = checkpoint(run_dir, file)
    if not path.is_file():
        raise DataError(f"{path}: not found; is {run_dir} a finished recommend run?")
    users, items = _read_ids(checkpoint(run_dir, IDS_FILE))
    with _reading(path):
        with np.load(path, allow_pickle=False) as arrays:
            state = {k.removeprefix("model_"): arrays[k] for k in arrays.files if k.startswith("model_")}
            user_items = _csr("user_items", arrays)
            counts = arrays["popularity"]
        if user_items.shape != (len(users), len(items)):
            raise ValueError(
                f"its matrix is {user_items.shape[0]} x {user_items.shape[1]}, {IDS_FILE} names "
                f"{len(users)} users and {len(items)} items"
            )
        model = build_model(config["model"], model_params(config), threads, config["seed"])
        model.load_state(state, user_items.shape)
        popularity = Popularity({}, 1, 0)
        popularity.load_state({"counts": counts}, user_items.shape)
    return Bundle(model, user_items, popularity, users, items)


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


def _read_ids(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """ids.json: the id of each matrix row (users) and column (items)."""
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
        users, items = (np.asarray(ids[key], dtype=object) for key in ("users", "items"))
    except (OSError, ValueError, KeyError, TypeError) as exc:  # JSON and UTF-8 errors are ValueErrors
        raise DataError(f"{path}: missing or corrupt model file ({exc}); train the run again") from None
    if users.ndim != 1 or items.ndim != 1:
        raise DataError(f"{path}: corrupt model file (users and items must be lists of ids); train the run again")
    return users, items


def save_split(run_dir: Path, train: sp.csr_matrix, test: sp.csr_matrix) -> None:
    with atomic_write(checkpoint(run_dir, SPLIT_FILE), "wb") as handle:
        np.savez(handle, **_csr_arrays("train", train), **_csr_arrays("test", test))


def load_split(run_dir: Path) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    path = checkpoint(run_dir, SPLIT_FILE)
    if not path.is_file():
        raise DataError(f"{run_dir}: has no held-out split (trained with --test-fraction 0); pass DATA to evaluate on")
    with _reading(path), np.load(path, allow_pickle=False) as arrays:
        return _csr("train", arrays), _csr("test", arrays)
