"""DQN learns: CartPole-v1's preset, cut to 6000 steps, gives a greedy policy far above an untrained one.

Measured with this recipe (mean return of best.pt over `evaluate -n 20`), seeds 0, 1, 2 with --threads 1
and 2 on the shared 2-core machine: 326.5, 183.2, 197.0, bit-identical with 1 and 2 threads. The
untrained networks of those seeds score 87.7, 9.2 and 9.2 (their evaluation at step 1000, before the
first update), a random policy 18.7. The threshold leaves the weakest seed 1.5x room and stays above
every untrained network measured.
"""

from __future__ import annotations

import pytest

from tests.conftest import args, ok

pytest.importorskip("gymnasium")
pytest.importorskip("torch")

RECIPE = args(total_steps=6000, confirm_episodes=20)
THRESHOLD = 120.0


def test_dqn_learns_cartpole(mltk, tmp_path):
    trained = ok(mltk("rl", "train", "--env", "CartPole-v1", "--runs-dir", tmp_path, "--quiet", *RECIPE)).json()
    result = ok(mltk("rl", "evaluate", trained["run_dir"], "-n", "20", "--format", "json")).json()
    assert result["return_mean"] >= THRESHOLD, result
