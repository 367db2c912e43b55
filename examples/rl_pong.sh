#!/usr/bin/env bash
# DQN on Atari Pong from pixels with the built-in preset (the shared Atari block with a fast
# exploration schedule): 84x84 gray frames, a stack of 4, the Nature CNN, raw game scores reported.
# Hours on a CPU; use --device cuda where there is one. Ctrl-C saves last.pt; --resume continues.
set -euo pipefail
RUNS="${RUNS:-runs}"
STEPS="${STEPS:-1000000}"

# Train (progress on stderr; one JSON line with run_dir and the best evaluation score on stdout).
# The replay memory lives in RUN/replay/ (100k transitions: 0.71 GB), not in the checkpoint.
mltk rl train --env ALE/Pong-v5 --total-steps "$STEPS" --runs-dir "$RUNS" --name pong | tee train.json
RUN=$(python3 -c 'import json,sys; print(json.load(open("train.json"))["run_dir"])')

# 10 full games with the best policy, raw scores (-21..21), and a GIF of the game's own screen.
mltk rl evaluate "$RUN" --episodes 10 --gif pong.gif

# The policy on stacked frames from a .npy file of shape (N, 4, 84, 84), one action per row.
python3 -c 'import numpy as np; np.save("frames.npy", np.zeros((2, 4, 84, 84), dtype=np.uint8))'
mltk rl predict "$RUN" frames.npy --q-values

# An interrupted run continues with its replay memory, epsilon, step counter and optimizer:
#   mltk rl train --resume "$RUN" --runs-dir "$RUNS"
