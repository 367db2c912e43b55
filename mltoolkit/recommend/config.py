"""The recommend hyperparameters and data options: one dataclass, written whole to config.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mltoolkit.recommend.models import HYPERPARAMETERS, MODEL_DEFAULTS


@dataclass
class RecommendConfig:
    """Model hyperparameters left as None take the chosen model's default (models.MODEL_DEFAULTS)."""

    model: Literal["als", "bpr", "cosine", "bm25", "tfidf", "ease", "popularity"] = "als"
    factors: int | None = None
    regularization: float | None = None
    iterations: int | None = None
    learning_rate: float | None = None
    neighbours: int | None = None
    bm25_k1: float | None = None
    bm25_b: float | None = None
    ease_lambda: float | None = None
    confidence: Literal["linear", "log", "binary"] = "linear"
    alpha: float = 1.0
    min_rating: float | None = None
    duplicates: Literal["sum", "last"] = "sum"
    user_col: str | None = None
    item_col: str | None = None
    rating_col: str | None = None
    time_col: str | None = None
    columns: list[str] | None = None
    test_fraction: float = 0.2
    split: Literal["random", "temporal"] = "random"
    refit: bool = True
    tune: bool = False
    tune_trials: int = 40
    tune_time: float = 240.0
    k: int = 10
    seed: int = 0
    threads: int = 0
    device: str = "auto"


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
