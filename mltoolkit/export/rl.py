"""rl: the Q-network of a DQN run, observations (float32 vectors, or stacked 0-255 frames as float32) in, one
Q-value per action out; a network over frames scales them to [0, 1] inside the graph."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.errors import DataError
from mltoolkit.export.neural import TorchSource
from mltoolkit.export.runtime import OnnxFunction, open_export
from mltoolkit.techniques import RL

SAMPLE = 64  # observations played in the run's environment for the parity check


def load(run_dir: Path) -> Any:
    """The run's torch policy from ``best.pt`` alone: ``last.pt``, which ``rl.load`` falls back to, is an
    unfinished run's state, not a model to ship."""
    from mltoolkit import rl

    best = run_dir / "checkpoints" / "best.pt"
    if not best.is_file():
        raise DataError(f"{run_dir}: no checkpoints/best.pt (unfinished run); nothing to export yet")
    return rl.load(best).policy


def source(run_dir: Path) -> TorchSource:
    policy = load(run_dir)
    real = observations(policy.env_id, SAMPLE, pixels=policy.pixels)
    rng = np.random.default_rng(0)
    random = (rng.standard_normal(real.shape) * (real.std(0) + 1e-3) + real.mean(0)).astype(np.float32)
    frames = len(policy.obs_shape) > 1
    metadata = {
        "env": policy.env_id,
        "input_shape": ["batch", *policy.obs_shape],
        "input_layout": "stacked grayscale frames, 0-255 values as float32 (N, stack, height, width)"
        if frames
        else "float32 observation vectors, as the environment returns them",
        "n_actions": policy.n_actions,
        "output": "Q-values (batch, n_actions); the greedy action is their argmax",
    }
    return TorchSource(policy.network, "observations", "q_values", real, random, metadata)


def observations(env_id: str, count: int, seed: int = 0, pixels: bool = False) -> np.ndarray:
    """``count`` observations from episodes of random actions: states the policy actually meets."""
    from mltoolkit.rl.envs import make_env

    env = make_env(env_id, pixels=pixels)
    env.action_space.seed(seed)
    seen, (obs, _) = [], env.reset(seed=seed)
    while len(seen) < count:
        seen.append(np.asarray(obs, dtype=np.float32))
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.stack(seen)


@dataclass
class OnnxPolicy:
    """What ``rl predict`` reads from a ``Policy`` (``q_values``, ``act``, sizes, env), run by ONNX Runtime."""

    function: OnnxFunction
    env_id: str
    obs_shape: tuple[int, ...]
    n_actions: int
    checkpoint: Path
    run_dir: Path | None

    @property
    def obs_dim(self) -> int:
        return self.obs_shape[0]

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        return self.function(np.ascontiguousarray(obs, dtype=np.float32))

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.q_values(obs).argmax(axis=1)


def onnx_policy(run: str | Path, runs_dir: str | Path = "runs", threads: int | None = None) -> OnnxPolicy:
    """The run's newest ONNX export as a drop-in for ``rl.policy.load_policy(run, runs_dir)``."""
    run_dir, function = open_export(run, runs_dir, RL.name, threads)
    meta = function.metadata
    obs_shape = tuple(int(size) for size in meta["input_shape"][1:])
    return OnnxPolicy(function, meta["env"], obs_shape, int(meta["n_actions"]), function.path, run_dir)
