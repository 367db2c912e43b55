"""``evaluate()``: ranking metrics of a run's model beside the popularity baseline.

Without DATA the run's own held-out split is scored with the model fitted on its train part
(``model-eval.npz``; the served ``model.npz`` has seen the test interactions). With DATA, the
served model is scored on those interactions (users and items it does not know are dropped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.console import info, warn
from mltoolkit.core.errors import DataError
from mltoolkit.core.io import source_name, write_json
from mltoolkit.core.runs import resolve_run_dir
from mltoolkit.recommend.data import load_interactions
from mltoolkit.recommend.metrics import PRECISION_DEFINITION, ranking_metrics, with_k
from mltoolkit.recommend.store import EVAL_MODEL_FILE, MODEL_FILE, checkpoint, load_bundle, load_split
from mltoolkit.recommend.training import column_spec, recommend_all
from mltoolkit.techniques import RECOMMEND


def evaluate(
    run: str | Path,
    data: str | None = None,
    *,
    runs_dir: str | Path = "runs",
    k: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Score the run's model (and popularity) at ``k`` (default: the run's); writes eval.json into the run."""
    if k is not None and k < 1:
        raise DataError(f"-k must be at least 1 (got {k})")
    run_dir = resolve_run_dir(run, runs_dir, RECOMMEND.name)
    if data is None:
        _, test = load_split(run_dir)
        file = EVAL_MODEL_FILE if checkpoint(run_dir, EVAL_MODEL_FILE).is_file() else MODEL_FILE
        bundle, config = load_bundle(checkpoint(run_dir, file), threads)
        source = "held-out split"
    else:
        bundle, config = load_bundle(checkpoint(run_dir, MODEL_FILE), threads)
        test = _test_matrix(data, config, bundle.user_index, bundle.item_index, bundle.user_items.shape)
        source = source_name(data)
    k = config["k"] if k is None else k
    seen = bundle.user_items
    metrics = ranking_metrics(recommend_all(bundle.model, seen, k), test, k)
    baseline = ranking_metrics(recommend_all(bundle.popularity, seen, k), test, k)
    result = {
        "k": k,
        "data": source,
        "precision_definition": PRECISION_DEFINITION,
        "model": config["model"],
        "metrics": with_k(metrics, k),
        "popularity": with_k(baseline, k),
    }
    write_json(run_dir / "eval.json", result)
    return result


def _test_matrix(data: str, config: dict[str, Any], users: dict[str, int], items: dict[str, int], shape: tuple) -> Any:
    """The interactions of DATA as a matrix over the model's users and items; unknown ids dropped."""
    import scipy.sparse as sp

    table = load_interactions(data, column_spec(config), duplicates=config.get("duplicates", "sum"),
                              min_rating=config.get("min_rating"))  # fmt: skip
    coo = table.ratings.tocoo()
    rows = np.array([users.get(str(u), -1) for u in table.users])[coo.row]
    cols = np.array([items.get(str(i), -1) for i in table.items])[coo.col]
    known = (rows >= 0) & (cols >= 0)
    if not known.any():
        raise DataError(f"{source_name(data)}: none of its users and items are known to the model")
    if not known.all():
        warn(f"{source_name(data)}: {int((~known).sum())} interactions of unknown users or items dropped")
    info(f"{source_name(data)}: evaluating on {int(known.sum())} interactions")
    return sp.csr_matrix((np.ones(int(known.sum()), np.float32), (rows[known], cols[known])), shape=shape)


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric, the model and the popularity baseline side by side."""
    return [
        {"metric": key, result["model"]: value, "popularity": result["popularity"].get(key)}
        for key, value in result["metrics"].items()
    ]
