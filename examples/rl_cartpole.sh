#!/usr/bin/env bash
# DQN on CartPole-v1 with the built-in preset: train until the policy holds a mean return of 475
# (the env's reward threshold) on evaluation, then score it, film it, and use it in a pipeline.
set -euo pipefail
RUNS="${RUNS:-runs}"
SEED="${SEED:-0}"

# Train (progress on stderr; one JSON line with run_dir and the best evaluation return on stdout).
mltk rl train --env CartPole-v1 --seed "$SEED" --runs-dir "$RUNS" --name "cartpole-seed$SEED" | tee train.json
RUN=$(python3 -c 'import json,sys; print(json.load(open("train.json"))["run_dir"])')

# 100 deterministic episodes with the best policy (best.pt), and a GIF of the first one.
mltk rl evaluate "$RUN" --episodes 100 --gif cartpole.gif

# The policy as a pipeline component: observations in (JSON arrays), actions out.
printf '[0.0, 0.0, 0.05, 0.0]\n[0.0, 0.0, -0.05, 0.0]\n' | mltk rl predict "$RUN" --q-values

# An interrupted run (Ctrl-C) continues from last.pt, replay memory and all:
#   mltk rl train --resume "$RUN" --runs-dir "$RUNS"
