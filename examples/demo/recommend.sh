#!/usr/bin/env bash
# `make demo` step: collaborative filtering on a synthetic table with two taste groups.
# Users u0, u2, ... like g0-* items, u1, u3, ... like g1-* items; a working model must keep to the group.
set -euo pipefail
DEMO_DIR="${DEMO_DIR:-.demo}"
RUNS="${RUNS:-$DEMO_DIR/runs}"
mkdir -p "$DEMO_DIR"

python -m mltoolkit.recommend.synthetic --users 300 --seed 0 > "$DEMO_DIR/ratings.csv"
echo "ratings: $(($(wc -l < "$DEMO_DIR/ratings.csv") - 1)) rows, e.g." >&2
head -3 "$DEMO_DIR/ratings.csv" >&2

# fit (alias of train): held-out split, ALS, metrics, refit on everything; one JSON line on stdout
mltk recommend fit "$DEMO_DIR/ratings.csv" --runs-dir "$RUNS" --name demo-als --threads 1 --quiet
# metrics beside the popularity baseline
mltk recommend evaluate "$RUNS/recommend/demo-als" --format table
# top 3 for two known users, one per group, and one unknown user (popularity fallback, warning on stderr)
mltk recommend predict "$RUNS/recommend/demo-als" --users u0,u1,stranger -n 3
# a new user who liked three g1 items, with the history items behind each recommendation
mltk recommend predict "$RUNS/recommend/demo-als" --history g1-item0,g1-item1,g1-item2 -n 3 --explain
# predict sits in pipelines: users from stdin, JSON lines out
printf 'u4\nu5\n' | mltk recommend predict "$RUNS/recommend/demo-als" - -n 2 --format jsonl | head -4
