"""Deep Q-learning (DQN) on gymnasium environments.

Python API (the CLI is a thin layer over it; torch and gymnasium are imported on first use, so
``mltk --help`` stays fast)::

    from mltoolkit import rl
    result = rl.train(rl.Config.for_env("CartPole-v1", seed=1))   # the env's preset, writes runs/rl/...
    agent = rl.load(result.run_dir)                               # the best policy
    agent.predict([[0.0, 0.1, 0.0, -0.1]], q_values=True)          # [{"action": 0, "q_values": [...]}]
    rl.evaluate(result.run_dir, episodes=100)                     # deterministic returns
"""

from __future__ import annotations

from mltoolkit.core.contract import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    Config="mltoolkit.rl.config:DQNConfig",
    train="mltoolkit.rl.training:train",
    load="mltoolkit.rl.prediction:load",
    evaluate="mltoolkit.rl.evaluation:evaluate",
)
