#!/usr/bin/env bash
# `make demo` step for `mltk boost`: a synthetic churn table with a string label and a categorical
# column -> train (early stopping on a split) -> evaluate -> predict in a pipe. About 10 s on 2 cores.
set -euo pipefail
DEMO_DIR="${DEMO_DIR:-.demo}"
RUNS="${RUNS:-$DEMO_DIR/runs}"
mkdir -p "$DEMO_DIR"
python - "$DEMO_DIR/churn.csv" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(0)
n = 4000
plan = rng.choice(["basic", "plus", "pro"], n)
tenure = rng.integers(1, 60, n)
calls = rng.poisson(2, n)
logit = 1.2 - 0.05 * tenure + 0.6 * calls - 0.8 * (plan == "pro") + rng.normal(0, 0.5, n)
with open(sys.argv[1], "w") as out:
    out.write("customer,plan,tenure,support_calls,churned\n")
    for i in range(n):
        out.write(f"c{i},{plan[i]},{tenure[i]},{calls[i]},{'yes' if logit[i] > 0 else 'no'}\n")
PY
echo "# train: string label, 'plan' is categorical automatically, 'customer' is an id" >&2
mltk boost train "$DEMO_DIR/churn.csv" --target churned --id customer --threads 1 --runs-dir "$RUNS" --name churn
echo "# evaluate on the same table (use a held-out file in real life)" >&2
mltk boost evaluate boost/churn "$DEMO_DIR/churn.csv" --runs-dir "$RUNS" --format table
echo "# predict from stdin, first rows with class probabilities" >&2
head -6 "$DEMO_DIR/churn.csv" | mltk boost predict boost/churn - --proba --runs-dir "$RUNS"
