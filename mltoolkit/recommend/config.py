"""The recommend hyperparameters and data options: one dataclass, written whole to config.json.

Each field carries its help text and range (``core.params.param``): the ``train`` command's options
are generated from them, and every value, typed, read from ``--config`` or from a resumed run, is
checked against its range before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from mltoolkit.core.params import RunOptions, param

ModelName = Literal["als", "bpr", "cosine", "bm25", "tfidf", "ease", "popularity"]
MODELS: tuple[str, ...] = get_args(ModelName)

# Hyperparameters each model reads; None in the config means "this model's default" (below).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # factors 32, regularization 30 with confidence 1 + rating: NDCG@10 0.449 on MovieLens-100K
    # (implicit's tutorial settings, factors 64 / regularization 0.05, give 0.344); docs/recommend.md.
    "als": {"factors": 32, "regularization": 30.0, "iterations": 15},
    "bpr": {"factors": 64, "regularization": 0.01, "iterations": 100, "learning_rate": 0.01},
    "cosine": {"neighbours": 20},
    "bm25": {"neighbours": 20, "bm25_k1": 1.2, "bm25_b": 0.75},
    "tfidf": {"neighbours": 20},
    "ease": {"ease_lambda": 500.0},
    "popularity": {},
}
HYPERPARAMETERS = (
    "factors", "regularization", "iterations", "learning_rate", "neighbours", "bm25_k1", "bm25_b", "ease_lambda",
)  # fmt: skip

_HYPER = "Model hyperparameters (default: the chosen model's)"
_DATA = "Data"
_EVAL = "Evaluation and tuning"


def split_list(text: str) -> list[str]:
    """``a, b,,c`` -> ``["a", "b", "c"]``: comma-separated names or ids as typed."""
    return [v.strip() for v in text.split(",") if v.strip()]


@dataclass
class RecommendConfig(RunOptions):
    """Model hyperparameters left as None take the chosen model's default (MODEL_DEFAULTS)."""

    data: str | None = param(
        None, "Ratings table: CSV, TSV, Parquet or JSON lines, or - for stdin.", path=True, cli=False
    )
    model: ModelName = param(
        "als", "als, bpr, cosine, bm25, tfidf (implicit's item-item kNN), ease or popularity.", short="-m"
    )
    factors: int | None = param(None, "Latent factors (als, bpr).", ge=1, panel=_HYPER, default_text="als 32, bpr 64")
    regularization: float | None = param(
        None, "L2 regularization (als, bpr).", ge=0, panel=_HYPER, default_text="als 30, bpr 0.01"
    )
    iterations: int | None = param(
        None, "Passes over the data (als, bpr).", ge=1, panel=_HYPER, default_text="als 15, bpr 100"
    )
    learning_rate: float | None = param(None, "SGD learning rate (bpr).", gt=0, panel=_HYPER, default_text="0.01")
    neighbours: int | None = param(None, "Neighbours kept per item (kNN).", ge=1, panel=_HYPER, default_text="20")
    bm25_k1: float | None = param(None, "BM25 K1 (bm25).", ge=0, panel=_HYPER, default_text="1.2")
    bm25_b: float | None = param(None, "BM25 B (bm25).", ge=0, le=1, panel=_HYPER, default_text="0.75")
    ease_lambda: float | None = param(None, "L2 weight of EASE's solve (ease).", gt=0, panel=_HYPER, default_text="500")
    confidence: Literal["linear", "log", "binary"] = param(
        "linear",
        "Rating -> confidence: linear (1 + alpha*r), log (1 + alpha*log1p(r); ratings >= 0), binary (1 + alpha).",
    )
    alpha: float = param(1.0, "Confidence scale.", ge=0)
    min_rating: float | None = param(None, "Drop ratings below this before anything else.", panel=_DATA)
    duplicates: Literal["sum", "last"] = param(
        "sum", "Repeated (user, item) pairs: sum or last (latest time).", panel=_DATA
    )
    user_col: str | None = param(None, "User column.", panel=_DATA, default_text="user, user_id, userId...")
    item_col: str | None = param(None, "Item column.", panel=_DATA, default_text="item, item_id, movieId...")
    rating_col: str | None = param(None, "Rating column (none found: every row is 1).", panel=_DATA)
    time_col: str | None = param(None, "Timestamp column (for --split temporal).", panel=_DATA)
    columns: list[str] | None = param(
        None, "Names for a headerless file, e.g. user,item,rating,timestamp.", parse=split_list, panel=_DATA
    )
    test_fraction: float = param(0.2, "Share of interactions held out for testing; 0 = none.", ge=0, lt=1, panel=_EVAL)
    split: Literal["random", "temporal"] = param(
        "random", "random (per interaction) or temporal (each user's latest).", panel=_EVAL
    )
    refit: bool = param(True, "Refit on all data for serving.")
    tune: bool = param(False, "Search hyperparameters on a validation split of train.", panel=_EVAL)
    tune_trials: int = param(40, "Most trials --tune runs.", ge=1, panel=_EVAL)
    tune_time: float = param(240.0, "Most seconds --tune searches.", gt=0, panel=_EVAL)
    k: int = param(10, "Cut-off of the ranking metrics.", ge=1, flag="-k", panel=_EVAL)
    seed: int = param(0, "Seed of the split, the models and --tune.", ge=0, lt=2**32)
    threads: int = param(
        0, "CPU threads (implicit's pool, EASE's BLAS); 0 means every core this process may use.", ge=0
    )
    device: str = param(
        "auto", "auto, cpu or cuda: auto uses implicit's CUDA models (als, bpr) where implicit has CUDA."
    )


def resolve_model_defaults(config: RecommendConfig) -> RecommendConfig:
    """Fill the chosen model's unset hyperparameters; the others stay None (they do not apply)."""
    for name, value in MODEL_DEFAULTS[config.model].items():
        if getattr(config, name) is None:
            setattr(config, name, value)
    return config


def model_params(config: RecommendConfig | dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters a model reads, from a config or a config.json dict."""
    source = config if isinstance(config, dict) else vars(config)
    return {name: source.get(name) for name in HYPERPARAMETERS}
