"""The recommenders behind one small interface: implicit's ALS, BPR and item-item kNN, EASE, popularity.

Every model takes the confidence matrix (users x items CSR, what ``data.confidence`` makes) and
answers four questions: top-n for known users, top-n for a new user's history, similar items, and
which history items drove a recommendation. implicit models get exactly the call a user of
implicit would write (``model.fit(matrix)``, ``model.recommend(userids, matrix, N=n)``), so mltk
adds no work on their hot path.
"""

from __future__ import annotations

from math import isqrt
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.errors import DataError, ResourceError, UsageError
from mltoolkit.recommend.config import MODELS

if TYPE_CHECKING:
    import scipy.sparse as sp

GPU_MODELS = ("als", "bpr")


def _clean(ids: np.ndarray, scores: np.ndarray, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mark empty slots (implicit fills them with id -1 or score -FLT_MAX) as -1 / -inf, pad to ``n`` columns.

    Callers skip -1 slots; padding keeps the shape ``(users, n)`` when the catalogue has fewer than n items.
    """
    ids = np.asarray(ids)
    scores = np.asarray(scores, dtype=np.float64)
    if ids.ndim == 1:
        ids, scores = ids[None, :], scores[None, :]
    bad = (ids < 0) | ~np.isfinite(scores) | (scores <= np.finfo(np.float32).min)
    ids, scores = np.where(bad, -1, ids), np.where(bad, -np.inf, scores)
    if n is not None and ids.shape[1] < n:
        missing = n - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, missing)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, missing)), constant_values=-np.inf)
    return ids, scores


class Recommender:
    """Base class: ``fit``, ``recommend`` (known users), ``recommend_new`` (histories), ``similar_items``."""

    name = ""
    supports_history = True
    supports_explain = False
    supports_similar = True

    def __init__(self, params: dict[str, Any], threads: int, seed: int, use_gpu: bool = False) -> None:
        self.params, self.threads, self.seed, self.use_gpu = params, threads, seed, use_gpu

    def fit(self, user_items: sp.csr_matrix) -> None:
        raise NotImplementedError

    def recommend(
        self, users: np.ndarray, user_items: sp.csr_matrix, n: int, filter_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items for ``users`` (rows of ``user_items`` belong to them, one per user)."""
        raise NotImplementedError

    def recommend_new(self, history: sp.csr_matrix, n: int, filter_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` for users not in training, from their item history (one CSR row each)."""
        raise UsageError(f"--history is not supported by {self.name}; use als, cosine, bm25, tfidf or ease")

    def similar_items(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        raise UsageError(f"--similar-to is not supported by {self.name}")

    def explain(self, history: sp.csr_matrix, item: int, n: int) -> list[tuple[int, float]]:
        """The history items that contributed most to ``item``'s score, with their contributions."""
        raise UsageError(f"--explain is not supported by {self.name}; use als, cosine, bm25, tfidf or ease")

    def state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def load_state(self, state: dict[str, np.ndarray], shape: tuple[int, int]) -> None:
        """Restore ``state()``; arrays that do not fit ``shape`` (users, items) are a ValueError."""
        raise NotImplementedError


def _expect(fits: bool, what: str) -> None:
    if not fits:
        raise ValueError(f"{what} do not match the run's users and items")


class ImplicitRecommender(Recommender):
    """One of implicit's models, called exactly as implicit's documentation does."""

    def __init__(self, name: str, params: dict[str, Any], threads: int, seed: int, use_gpu: bool = False) -> None:
        super().__init__(params, threads, seed, use_gpu)
        self.name = name
        self.supports_history = name != "bpr"
        self.supports_explain = name != "bpr"
        self.model = self._build(use_gpu)

    def _build(self, use_gpu: bool) -> Any:
        p = self.params
        if self.name == "als":
            from implicit.als import AlternatingLeastSquares

            return AlternatingLeastSquares(
                factors=p["factors"],
                regularization=p["regularization"],
                iterations=p["iterations"],
                num_threads=self.threads,
                random_state=self.seed,
                use_gpu=use_gpu,
            )
        if self.name == "bpr":
            from implicit.bpr import BayesianPersonalizedRanking

            return BayesianPersonalizedRanking(
                factors=p["factors"],
                learning_rate=p["learning_rate"],
                regularization=p["regularization"],
                iterations=p["iterations"],
                num_threads=self.threads,
                random_state=self.seed,
                use_gpu=use_gpu,
            )
        from implicit import nearest_neighbours as nn

        if self.name == "bm25":
            return nn.BM25Recommender(K=p["neighbours"], K1=p["bm25_k1"], B=p["bm25_b"], num_threads=self.threads)
        cls = nn.CosineRecommender if self.name == "cosine" else nn.TFIDFRecommender
        return cls(K=p["neighbours"], num_threads=self.threads)

    def fit(self, user_items: sp.csr_matrix) -> None:
        import warnings

        from implicit.recommender_base import ModelFitError
        from implicit.utils import ParameterWarning

        if hasattr(self.model, "K"):  # implicit allocates for K neighbours, though no item has more than the catalogue
            self.model.K = min(self.model.K, user_items.shape[1])
        try:
            with warnings.catch_warnings():  # implicit's kNN fit hands its own COO matrix to itself and warns
                warnings.simplefilter("ignore", ParameterWarning)
                self.model.fit(user_items, show_progress=False)
        except ModelFitError:
            cure = "--learning-rate" if self.name == "bpr" else "--alpha, or use --confidence log"
            raise DataError(f"{self.name} diverged (NaN in its factors); lower {cure}") from None
        if self.use_gpu:  # serve and save from host memory: the arrays are small, the GPU may not be there later
            self.model = self.model.to_cpu()

    def recommend(
        self, users: np.ndarray, user_items: sp.csr_matrix, n: int, filter_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        # implicit returns filler (item 0, score 0) beyond the catalogue: never ask for more than there is
        top = min(n, user_items.shape[1])
        ids, scores = self.model.recommend(users, user_items, N=top, filter_already_liked_items=filter_seen)
        return _clean(ids, scores, n)

    def recommend_new(self, history: sp.csr_matrix, n: int, filter_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        if not self.supports_history:
            return super().recommend_new(history, n, filter_seen)
        rows = np.arange(history.shape[0])
        recalculate = self.name == "als"  # ALS solves the new user's factors; kNN scores from the history itself
        top = min(n, history.shape[1])
        ids, scores = self.model.recommend(
            rows, history, N=top, filter_already_liked_items=filter_seen, recalculate_user=recalculate
        )
        return _clean(ids, scores, n)

    def similar_items(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        wanted = n + 1  # the item itself comes back first
        if self.name in ("als", "bpr"):  # factor models return filler beyond the catalogue
            wanted = min(wanted, len(self.model.item_factors))
        ids, scores = self.model.similar_items(item, N=wanted)
        keep = ids != item
        return _clean(ids[keep][:n], scores[keep][:n])

    def explain(self, history: sp.csr_matrix, item: int, n: int) -> list[tuple[int, float]]:
        if self.name == "als":
            _, contributions, _ = self.model.explain(0, history, item, N=n)
            return [(int(i), float(s)) for i, s in contributions]
        if not self.supports_explain:
            return super().explain(history, item, n)
        # kNN score of item i = sum over history items j of confidence_j * similarity[j, i]
        liked, weights = history.indices, history.data
        contributions = np.asarray(self.model.similarity[liked, item].todense()).ravel() * weights
        return _top_contributions(liked, contributions, n)

    def state(self) -> dict[str, np.ndarray]:
        if self.name in ("als", "bpr"):
            return {"user_factors": self.model.user_factors, "item_factors": self.model.item_factors}
        sim = self.model.similarity.tocsr()
        return {"sim_data": sim.data, "sim_indices": sim.indices, "sim_indptr": sim.indptr, "sim_shape": sim.shape}

    def load_state(self, state: dict[str, np.ndarray], shape: tuple[int, int]) -> None:
        if self.name in ("als", "bpr"):
            users, items = state["user_factors"], state["item_factors"]
            width = items.shape[-1]
            _expect(users.shape == (shape[0], width) and items.shape == (shape[1], width), "the factors")
            self.model = self._build(use_gpu=False)
            self.model.user_factors, self.model.item_factors = users, items
            return
        import scipy.sparse as sp
        from implicit._nearest_neighbours import NearestNeighboursScorer

        sim = sp.csr_matrix(
            (state["sim_data"], state["sim_indices"], state["sim_indptr"]), shape=tuple(state["sim_shape"])
        )
        _expect(sim.shape == (shape[1], shape[1]), "the item similarities")
        sim.check_format(full_check=True)  # an index out of range would crash implicit's C++ scorer
        self.model.similarity, self.model.scorer = sim, NearestNeighboursScorer(sim)


def _top_contributions(items: np.ndarray, contributions: np.ndarray, n: int) -> list[tuple[int, float]]:
    order = np.argsort(-contributions)[:n]
    return [(int(items[i]), float(contributions[i])) for i in order if contributions[i] > 0]


def _top_n(scores: np.ndarray, seen: sp.csr_matrix | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``n`` of a dense score block, seen items (nonzeros of ``seen``) excluded."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    if seen is not None:
        rows, cols = seen.nonzero()
        scores[rows, cols] = -np.inf
    top = min(n, scores.shape[1])
    part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return _clean(np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1), n)


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = matrix.copy()
    out.data = np.ones_like(out.data, dtype=np.float32)
    return out


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (Steck 2019): B = I - P diagMat(1 / diag(P)), P = (X'X + lambda I)^-1.

    One dense item x item solve, no iterations; strong on catalogues of up to a few ten thousand items.
    It models which items were rated, not how much: confidences are read as 0/1 (binary input scored
    NDCG@10 0.441 on MovieLens-100K, confidence-weighted input 0.382).
    """

    name = "ease"
    supports_explain = True
    _BATCH = 1024  # users scored per dense block, bounding memory to batch x items floats

    def fit(self, user_items: sp.csr_matrix) -> None:
        items = user_items.shape[1]
        user_items = _binary(user_items)
        gram = (user_items.T @ user_items).toarray().astype(np.float64)
        gram[np.diag_indices(items)] += self.params["ease_lambda"]
        try:
            precision = np.linalg.inv(gram)
        except np.linalg.LinAlgError:
            raise DataError(f"--ease-lambda {self.params['ease_lambda']:g} is too small to solve; raise it") from None
        weights = precision / -np.diag(precision)
        weights[np.diag_indices(items)] = 0.0
        self.weights = weights.astype(np.float32)

    def recommend(
        self, users: np.ndarray, user_items: sp.csr_matrix, n: int, filter_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.recommend_new(user_items, n, filter_seen)

    def recommend_new(self, history: sp.csr_matrix, n: int, filter_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        blocks = []
        for start in range(0, history.shape[0], self._BATCH):
            rows = _binary(history[start : start + self._BATCH])
            blocks.append(_top_n(rows @ self.weights, rows if filter_seen else None, n))
        return np.vstack([b[0] for b in blocks]), np.vstack([b[1] for b in blocks])

    def similar_items(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = _top_n(self.weights[item][None, :], None, n + 1)
        keep = ids[0] != item
        return ids[0][keep][:n], scores[0][keep][:n]

    def explain(self, history: sp.csr_matrix, item: int, n: int) -> list[tuple[int, float]]:
        liked = history.indices
        return _top_contributions(liked, self.weights[liked, item], n)

    def state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights}

    def load_state(self, state: dict[str, np.ndarray], shape: tuple[int, int]) -> None:
        _expect(state["weights"].shape == (shape[1], shape[1]), "the EASE weights")
        self.weights = state["weights"]


class Popularity(Recommender):
    """Most-interacted items first: the baseline every model must beat, and the unknown-user fallback."""

    name = "popularity"
    supports_similar = False

    def fit(self, user_items: sp.csr_matrix) -> None:
        self.counts = np.diff(user_items.tocsc().indptr).astype(np.float32)

    def recommend(
        self, users: np.ndarray, user_items: sp.csr_matrix, n: int, filter_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.recommend_new(user_items, n, filter_seen)

    def recommend_new(self, history: sp.csr_matrix, n: int, filter_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(-self.counts, kind="stable")
        if not filter_seen:
            top = order[:n]
            return _clean(np.tile(top, (history.shape[0], 1)), np.tile(self.counts[top], (history.shape[0], 1)), n)
        # at most (seen + n) of the popularity order is ever needed: rank that prefix only
        width = min(len(order), n + int(np.diff(history.indptr).max(initial=0)))
        prefix = order[:width]
        scores = np.tile(self.counts[prefix], (history.shape[0], 1))
        seen = history[:, prefix]
        ids, top_scores = _top_n(scores, seen, n)
        return np.where(ids >= 0, prefix[np.maximum(ids, 0)], -1), top_scores

    def state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def load_state(self, state: dict[str, np.ndarray], shape: tuple[int, int]) -> None:
        _expect(state["counts"].shape == (shape[1],), "the item counts")
        self.counts = state["counts"]


def check_fit_memory(name: str, params: dict[str, Any], users: int, items: int) -> None:
    """Refuse a fit whose arrays would not fit in memory, before any is allocated.

    Two models live at once in train: the evaluated one and the refit.
    """
    from mltoolkit.core.device import check_memory

    if name == "ease":  # solving: three float64 items x items matrices; the evaluated model's float32 weights
        needed = 32 * items * items
        check_memory(needed, f"ease on {items} items", lambda free: f"a catalogue of {isqrt(free // 32)} items")
        return
    if name in ("als", "bpr"):  # float32 factors of every user and item
        option, count, unit = "factors", params["factors"], 2 * 4 * (users + items)
    elif name in ("cosine", "bm25", "tfidf"):  # a sparse items x neighbours similarity: float32 value, int32 index
        option, count, unit = "neighbours", min(params["neighbours"], items), 2 * 8 * items
    else:
        return
    check_memory(count * unit, f"--{option} {count}", lambda free: f"--{option} {free // unit}")


def thread_count(requested: int | None) -> int:
    """Threads for implicit and BLAS: 0 or None is every core; more than the cores are capped (implicit's
    OpenMP pool crashes when asked for 100000)."""
    from mltoolkit.core.device import available_cores, resolve_threads

    return min(resolve_threads(requested), available_cores())


def build_model(name: str, params: dict[str, Any], threads: int, seed: int, use_gpu: bool = False) -> Recommender:
    """A fresh, unfitted model; ``params`` holds the resolved hyperparameters (config.MODEL_DEFAULTS filled in)."""
    if name == "ease":
        return EASE(params, threads, seed)
    if name == "popularity":
        return Popularity(params, threads, seed)
    if name in MODELS:
        return ImplicitRecommender(name, params, threads, seed, use_gpu)
    raise DataError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")


def limit_blas(model: str, threads: int) -> None:
    """implicit parallelises itself and wants BLAS single-threaded; EASE's one big solve wants BLAS threads.

    threadpoolctl only reaches libraries already loaded, so scipy's and implicit's BLAS are loaded first.
    """
    import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS)
    from threadpoolctl import threadpool_limits

    if model not in ("ease", "popularity"):
        import implicit.cpu.als  # noqa: F401

    threadpool_limits(limits=threads if model == "ease" else 1, user_api="blas")


def use_gpu_for(model: str, device: str) -> bool:
    """``auto`` uses implicit's CUDA models when implicit was built with CUDA; ``cuda`` insists on it."""
    device = device.strip().lower()
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise DataError(f"unknown device {device!r}; expected auto, cpu or cuda")
    if device == "cpu":
        return False
    import implicit.gpu

    if device.startswith("cuda"):
        if not implicit.gpu.HAS_CUDA:
            raise ResourceError("implicit was built without CUDA here; use --device cpu or auto")
        if model not in GPU_MODELS:
            raise ResourceError(f"implicit has no GPU version of {model}; use --device cpu (or --model als/bpr)")
        return True
    return bool(implicit.gpu.HAS_CUDA) and model in GPU_MODELS
