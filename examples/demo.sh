#!/usr/bin/env bash
# `make demo`: a short end-to-end tour of every technique on small or synthetic data (2 to 5 minutes
# on 2 CPU cores). Each step is examples/demo/<technique>.sh; runs and data go under $DEMO_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEMO_DIR="${DEMO_DIR:-.demo}"
rm -rf "$DEMO_DIR" && mkdir -p "$DEMO_DIR"
export RUNS="$DEMO_DIR/runs"

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "mltk env"
mltk env
for technique in boost recommend rl transfer segment; do
    step "mltk $technique"
    start=$SECONDS
    bash "examples/demo/$technique.sh"
    echo "($technique took $((SECONDS - start)) s)" >&2
done
step "mltk runs list"
mltk runs list --runs-dir "$RUNS"
