"""Every vector-observation preset of `mltk rl` against rl-baselines3-zoo's published DQN score (issue 16).

    python benchmarks/rl_presets.py                      # every vector preset, seeds 0-4
    python benchmarks/rl_presets.py --envs Acrobot-v1 --seeds 0,1

A preset is a promise: `mltk rl train --env ID` with no other flag should reach what the zoo reports for ID
within the zoo's step budget. Each run is `mltk rl train --env ID --seed S` (the preset, its own step budget
and early stopping), then `mltk rl evaluate` over 100 deterministic episodes (episode i reset with seed i).
The zoo's figures are its benchmark table (rl-baselines3-zoo, benchmark.md: mean and standard deviation of
the episode return of the trained agent, and the training budget). A seed counts as reaching the score when
its 100-episode mean is at least the zoo's mean, and as within reach when it is at least the zoo's mean
minus one of the zoo's standard deviations.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from rl_cartpole import run_mltk

ZOO = {  # env id: (mean return, std over episodes, training steps), DQN rows of rl-baselines3-zoo's benchmark.md
    "CartPole-v1": (500.0, 0.0, 50_000),
    "Acrobot-v1": (-76.639, 11.752, 100_000),
    "MountainCar-v0": (-100.849, 9.925, 120_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default=",".join(ZOO), help="comma-separated preset env ids")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    args = parser.parse_args()
    envs, seeds = args.envs.split(","), [int(s) for s in args.seeds.split(",")]
    print(f"uptime at start: {os.popen('uptime').read().strip()}", flush=True)
    summary = []
    with tempfile.TemporaryDirectory(prefix="rl-presets-") as tmp:
        for env in envs:
            mean, std, budget = ZOO[env]
            rows = [run_mltk(seed, None, Path(tmp), env) for seed in seeds]
            for seed, row in zip(seeds, rows):
                print(
                    f"{env:15s} seed {seed}: 100-episode mean {row['return_mean']:8.1f} (zoo {mean:.1f} +- {std:.1f}) "
                    f"after {row['steps']:,} of {budget:,} steps, {row['cpu_s']:.0f} CPU s",
                    flush=True,
                )
            reached = sum(r["return_mean"] >= mean for r in rows)
            near = sum(r["return_mean"] >= mean - std for r in rows)
            median = statistics.median(r["return_mean"] for r in rows)
            summary.append(
                f"{env:15s} median {median:8.1f}; reaches the zoo's {mean:.1f} in {reached}/{len(rows)} seeds, "
                f"within one zoo std in {near}/{len(rows)}"
            )
    print(f"uptime at end: {os.popen('uptime').read().strip()}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
