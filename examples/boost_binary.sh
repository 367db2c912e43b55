#!/usr/bin/env bash
# LightGBM's binary classification example, three ways: its own train.conf (same metric as the
# LightGBM CLI), mltk defaults (early stopping on a split of the training file), and --tune.
# Data: ../shared/data/lightgbm (override with LGB_DATA=...).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${LGB_DATA:-../shared/data/lightgbm}/binary_classification"
RUNS="${RUNS:-runs}"

# 1. The train.conf parameters (data, valid_data, binary.train.weight picked up as the CLI does).
mltk boost train --lightgbm-config "$DATA/train.conf" --runs-dir "$RUNS" --name binary-conf
mltk boost evaluate boost/binary-conf "$DATA/binary.test" --runs-dir "$RUNS"

# 2. Defaults: headerless TSV, label in column 0, 20% of the training rows for early stopping.
mltk boost train "$DATA/binary.train" --runs-dir "$RUNS" --name binary-default
mltk boost evaluate boost/binary-default "$DATA/binary.test" --runs-dir "$RUNS"

# 3. A small random search on a split of the training data (the test file is never looked at).
mltk boost train "$DATA/binary.train" --tune --runs-dir "$RUNS" --name binary-tuned
mltk boost evaluate boost/binary-tuned "$DATA/binary.test" --runs-dir "$RUNS"

# Scores with probabilities and SHAP contributions, first rows.
mltk boost predict boost/binary-tuned "$DATA/binary.test" --proba --explain --runs-dir "$RUNS" | head -3
