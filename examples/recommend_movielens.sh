#!/usr/bin/env bash
# MovieLens-100K with mltk recommend: defaults, a comparison of models, --tune, predictions.
# Data: ../shared/data/ml-100k/u.data relative to the repo root (override with ML100K=path).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${ML100K:-../shared/data/ml-100k/u.data}"
RUNS="${RUNS:-runs}"

# u.data is tab-separated with no header: name the columns (sniffing would guess the same order)
COLS=(--columns user,item,rating,timestamp)

# 1. defaults (ALS, factors 32, regularization 30, confidence 1 + rating), implicit's split (seed 42)
mltk recommend fit "$DATA" "${COLS[@]}" --seed 42 --name ml100k-als --runs-dir "$RUNS"

# 2. other models on the same split
for model in ease bm25 bpr popularity; do
    mltk recommend fit "$DATA" "${COLS[@]}" --seed 42 --model "$model" --name "ml100k-$model" --runs-dir "$RUNS" -q
done

# 3. hyperparameter search on a validation split carved from train (the test split stays unseen)
mltk recommend fit "$DATA" "${COLS[@]}" --seed 42 --tune --name ml100k-tuned --runs-dir "$RUNS"

# 4. a time-based split: each user's latest 20% of ratings are the test set
mltk recommend fit "$DATA" "${COLS[@]}" --split temporal --name ml100k-temporal --runs-dir "$RUNS" -q

# 5. metrics beside the popularity baseline, then predictions
mltk recommend evaluate ml100k-tuned --runs-dir "$RUNS" --format table
mltk recommend predict ml100k-tuned --runs-dir "$RUNS" --users 1,2 -n 5 --explain
mltk recommend predict ml100k-tuned --runs-dir "$RUNS" --similar-to 50 -n 5     # 50 = Star Wars (1977)
mltk recommend predict ml100k-tuned --runs-dir "$RUNS" --history 50,172,181 -n 5
mltk runs list --runs-dir "$RUNS" --technique recommend
