#!/usr/bin/env bash
# `make demo` step for `mltk rl`: DQN learns CartPole-v1 from scratch with the built-in preset and
# stops once the greedy policy holds the env's reward threshold (475 of 500) on evaluation; then the
# best policy is scored, filmed, and used as a pipeline component.
set -euo pipefail
DEMO_DIR="${DEMO_DIR:-.demo}"
RUNS="${RUNS:-$DEMO_DIR/runs}"

echo "-- mltk rl train --env CartPole-v1 (progress lines: one per evaluation)" >&2
mltk rl train --env CartPole-v1 --seed 0 --runs-dir "$RUNS" --name cartpole | tee "$DEMO_DIR/rl_train.json"
RUN="$RUNS/rl/cartpole"

echo "-- mltk rl evaluate: 100 deterministic episodes with best.pt, and a GIF of the first" >&2
mltk rl evaluate "$RUN" --episodes 100 --gif "$DEMO_DIR/cartpole.gif" --format table

echo "-- mltk rl predict: observations in (JSON arrays on stdin), greedy actions out" >&2
printf '[0.0, 0.0, 0.05, 0.0]\n[0.0, 0.0, -0.05, 0.0]\n[0.1, 0.5, 0.0, -0.5]\n' | mltk rl predict "$RUN" --q-values
echo "(files: $RUN/plots/returns.png, $DEMO_DIR/cartpole.gif)" >&2
