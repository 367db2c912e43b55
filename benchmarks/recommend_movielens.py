"""mltk recommend vs raw implicit on MovieLens-100K: same split, same matrix, same settings, same threads.

Protocol (the issue's): ``implicit.evaluation.train_test_split(ratings, 0.8, random_state=42)``,
metrics of ``implicit.evaluation.ranking_metrics_at_k`` at K=10. The raw side is what an implicit
user writes: pandas -> coo -> split -> ``1 + alpha * rating`` -> ``model.fit`` ->
``model.recommend(all users)``. The mltk side goes through mltk's loader, split, model wrappers
and metric code. Fit and recommend-all are timed separately, alternating raw and mltk, medians
over ``--repeats``. Then mltk's default settings and ``--tune`` are run end to end (train()).

    .venv/bin/python benchmarks/recommend_movielens.py [--data ../shared/data/ml-100k/u.data] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = os.environ.get("MLTK_ML100K", str(ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"))
IMPLICIT_MODELS = ("als", "bpr", "cosine", "bm25", "tfidf")


def raw_implicit(path: str, name: str, params: dict, threads: int, seed: int) -> tuple[dict, float, float, object]:
    """The implicit tutorial loop, written as an implicit user would; returns metrics, fit s, recommend s."""
    import pandas as pd
    import scipy.sparse as sp
    from implicit import nearest_neighbours as nn
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.evaluation import ranking_metrics_at_k, train_test_split

    frame = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "timestamp"])
    users, items = frame.user.astype("category").cat.codes, frame.item.astype("category").cat.codes
    ratings = sp.coo_matrix((frame.rating.astype(np.float32), (users, items))).tocsr()
    train, test = train_test_split(ratings, train_percentage=0.8, random_state=seed)
    user_items = train.copy()
    user_items.data = 1.0 + 1.0 * user_items.data  # confidence = 1 + alpha * rating, alpha 1
    if name == "als":
        model = AlternatingLeastSquares(
            factors=params["factors"],
            regularization=params["regularization"],
            iterations=params["iterations"],
            num_threads=threads,
            random_state=seed,
        )
    elif name == "bpr":
        model = BayesianPersonalizedRanking(
            factors=params["factors"],
            learning_rate=params["learning_rate"],
            regularization=params["regularization"],
            iterations=params["iterations"],
            num_threads=threads,
            random_state=seed,
        )
    elif name == "bm25":
        model = nn.BM25Recommender(
            K=params["neighbours"], K1=params["bm25_k1"], B=params["bm25_b"], num_threads=threads
        )
    else:
        cls = nn.CosineRecommender if name == "cosine" else nn.TFIDFRecommender
        model = cls(K=params["neighbours"], num_threads=threads)  # fmt: skip
    began = time.perf_counter()
    model.fit(user_items, show_progress=False)
    fitted = time.perf_counter()
    model.recommend(np.arange(user_items.shape[0]), user_items, N=10)
    done = time.perf_counter()
    metrics = ranking_metrics_at_k(model, user_items, test, K=10, show_progress=False)
    return metrics, fitted - began, done - fitted, test


def mltk_side(path: str, name: str, threads: int, seed: int) -> tuple[dict, float, float, object]:
    """The same through mltk's loader, split and model wrappers (what `mltk recommend fit` runs)."""
    from mltoolkit.recommend.config import RecommendConfig, resolve_model_defaults
    from mltoolkit.recommend.data import ColumnSpec, load_interactions
    from mltoolkit.recommend.split import split
    from mltoolkit.recommend.training import fit_and_score

    config = resolve_model_defaults(RecommendConfig(model=name, seed=seed, threads=threads))
    data = load_interactions(path, ColumnSpec(columns=["user", "item", "rating", "timestamp"]))
    train, test, _ = split(data.ratings, data.times, 0.2, "random", seed)
    _, _, metrics, timings = fit_and_score(config, train, test, threads)
    return metrics, timings["fit_s"], timings["recommend_s"], test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="MovieLens-100K u.data (env MLTK_ML100K)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-tune", action="store_true", help="skip the --tune run")
    options = parser.parse_args()
    if not Path(options.data).is_file():
        raise SystemExit(f"{options.data}: not found; pass --data or set MLTK_ML100K")

    import implicit.als  # noqa: F401  (load every BLAS first: threadpoolctl limits only loaded libraries)
    from threadpoolctl import threadpool_limits

    from mltoolkit.recommend.config import MODEL_DEFAULTS

    threadpool_limits(1, user_api="blas")  # what implicit asks its users to do
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"data {options.data}, threads {options.threads}, repeats {options.repeats} (medians), seed {options.seed}\n")
    header = f"{'model':<11}{'side':<6}{'NDCG@10':>9}{'MAP@10':>9}{'fit s':>9}{'rec-all s':>10}{'total s':>9}"
    print(header + f"{'ratio':>8}{'|dNDCG|':>10}")
    for name in (*IMPLICIT_MODELS, "ease", "popularity"):
        params = MODEL_DEFAULTS[name]
        rows: dict[str, list] = {"raw": [], "mltk": []}
        for _ in range(options.repeats):
            if name in IMPLICIT_MODELS:
                rows["raw"].append(raw_implicit(options.data, name, params, options.threads, options.seed))
            rows["mltk"].append(mltk_side(options.data, name, options.threads, options.seed))
        totals = {}
        for side in ("raw", "mltk"):
            if not rows[side]:
                continue
            metrics = rows[side][0][0]
            fit = statistics.median(r[1] for r in rows[side])
            rec = statistics.median(r[2] for r in rows[side])
            totals[side] = statistics.median(r[1] + r[2] for r in rows[side])
            line = f"{name:<11}{side:<6}{metrics['ndcg']:>9.4f}{metrics['map']:>9.4f}{fit:>9.3f}{rec:>10.3f}"
            line += f"{totals[side]:>9.3f}"
            if side == "mltk" and "raw" in totals:
                same_split = (rows["raw"][0][3] != rows["mltk"][0][3]).nnz == 0
                diff = max(abs(rows["raw"][0][0][key] - metrics[key]) for key in ("ndcg", "map", "auc"))
                line += f"{totals['mltk'] / totals['raw']:>8.3f}{diff:>10.1e}" + (
                    "" if same_split else "  SPLIT DIFFERS"
                )
            print(line, flush=True)
    print("\nratio = mltk (fit + recommend-all) / raw implicit's; |dNDCG| = largest |difference| of NDCG, MAP, AUC")
    print("ease and popularity are mltk's own (no implicit counterpart)")

    from mltoolkit.recommend.config import RecommendConfig
    from mltoolkit.recommend.training import train

    with tempfile.TemporaryDirectory() as runs:
        common = {"data": str(options.data), "seed": options.seed, "threads": options.threads, "refit": False,
                  "columns": ["user", "item", "rating", "timestamp"]}  # fmt: skip
        default = train(RecommendConfig(**common), runs_dir=Path(runs), name="default").summary
        print(f"\nmltk recommend fit (defaults: als, factors 32, reg 30, confidence 1 + rating): "
              f"NDCG@10 {default['final']['ndcg@10']:.4f}, wall {default['wall_time_s']:.1f} s")  # fmt: skip
        if not options.no_tune:
            tuned = train(RecommendConfig(**common, tune=True), runs_dir=Path(runs), name="tuned").summary
            print(f"mltk recommend fit --tune: NDCG@10 {tuned['final']['ndcg@10']:.4f}, "
                  f"wall {tuned['wall_time_s']:.1f} s")  # fmt: skip
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
