"""Deep Q-learning (DQN) on gymnasium environments: ``train``, ``evaluate``, ``predict``.

Python API (the CLI is a thin layer over it)::

    from mltoolkit import rl
    summary = rl.train(env="CartPole-v1", seed=1)           # preset + overrides, writes runs/rl/...
    rl.evaluate(summary["run_dir"], episodes=100)            # deterministic returns
    rl.predict(summary["run_dir"], [[0.0, 0.1, 0.0, -0.1]])  # [{"action": 0}]

torch and gymnasium are imported on first use, not with this package, so ``mltk --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def train(
    env: str | None = None,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    runs_dir: str | Path = "runs",
    name: str | None = None,
    resume: str | None = None,
    **hyperparameters: Any,
) -> dict[str, Any]:
    """Train DQN on ``env`` with its preset, overridden by ``config_file`` then ``hyperparameters``
    (``DQNConfig`` fields; ``None`` leaves a value to the layers below)."""
    from mltoolkit.core.runs import resumed_config
    from mltoolkit.rl.config import dqn_config
    from mltoolkit.rl.training import train as train_loop
    from mltoolkit.techniques import RL

    flags = {"env": env, "preset": preset, **hyperparameters}
    config = dqn_config(flags, config_file, resumed_config(resume, runs_dir, RL.name))
    return train_loop(config, runs_dir=runs_dir, name=name, resume=resume)


def evaluate(run: str | Path, **options: Any) -> dict[str, Any]:
    """Deterministic returns of a trained policy (see ``mltoolkit.rl.evaluation.evaluate``)."""
    from mltoolkit.rl.evaluation import evaluate as evaluate_policy

    return evaluate_policy(run, **options)


def predict(run: str | Path, observations: Any, **options: Any) -> list[dict[str, Any]]:
    """Greedy actions (and optionally Q-values) for observation vectors."""
    from mltoolkit.rl.prediction import predict as predict_actions

    return predict_actions(run, observations, **options)


__all__ = ["train", "evaluate", "predict"]
