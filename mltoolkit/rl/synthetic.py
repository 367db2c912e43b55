"""A tiny DQN run for tests and the docs: CartPole-v1 needs no data, so only observations are written."""

from __future__ import annotations

import json
from pathlib import Path

from mltoolkit.core.contract import Example

# A few hundred steps with a 16x16 network: every part of the loop runs (updates, evaluations, checkpoints).
TINY_TRAIN = [
    "--env", "CartPole-v1", "--total-steps", "300", "--learning-starts", "50", "--eval-every", "150",
    "--eval-episodes", "2", "--confirm-episodes", "0", "--batch-size", "16", "--hidden", "16,16",
    "--log-every", "100", "--buffer-size", "1000", "--threads", "1",
]  # fmt: skip
OBSERVATIONS = [[0.0, 0.1, 0.02, -0.3], [0.5, -1.0, 0.1, 1.2], [-0.04, 0.0, -0.2, 0.25]]


def tiny_example(folder: Path) -> Example:
    """CartPole-v1 for 300 steps; three observations as a JSON-lines file; --resume to 400 steps."""
    observations = Path(folder) / "observations.jsonl"
    observations.write_text("".join(json.dumps(obs) + "\n" for obs in OBSERVATIONS), encoding="utf-8")
    return Example(
        train_args=list(TINY_TRAIN),
        predict_args=[str(observations), "--q-values"],
        records=[list(obs) for obs in OBSERVATIONS],
        more_args=["--total-steps", "400"],
        evaluate_args=["--episodes", "2"],
    )
