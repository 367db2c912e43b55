"""A trained policy loaded back from a run directory or a checkpoint file: greedy actions and Q-values."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mltoolkit.core.checkpoint import load_checkpoint, run_checkpoint
from mltoolkit.core.errors import DataError
from mltoolkit.rl.networks import make_q_network
from mltoolkit.techniques import RL


@dataclass
class Policy:
    """The greedy policy of a Q-network: ``act`` picks ``argmax_a Q(s, a)``."""

    network: nn.Module  # float32, as trained (what ``mltk export`` writes)
    env_id: str
    obs_shape: tuple[int, ...]  # (length,) for vectors, (stack, height, width) for frames
    n_actions: int
    checkpoint: Path
    run_dir: Path | None
    pixels: bool = False  # the env is seen through its rendering

    @property
    def obs_dim(self) -> int:
        """The length of a vector observation (what export sizes its input by)."""
        return self.obs_shape[0]

    @cached_property
    def _float64(self) -> nn.Module:
        """A float64 copy for answers: in float32 the 7th digit of a row's Q-values depends on the batch it is
        computed in (GEMM kernels), so a printed record would depend on its neighbours; in float64 it does not."""
        return copy.deepcopy(self.network).double()

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        return self._float64(torch.as_tensor(obs, dtype=torch.float64)).numpy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.q_values(obs).argmax(axis=1)


def load_policy(ref: str | Path, runs_dir: str | Path = "runs") -> Policy:
    """Rebuild the Q-network from a checkpoint alone: its config says the architecture and the env."""
    path, run_dir = run_checkpoint(ref, runs_dir, RL.name)
    payload = load_checkpoint(path, RL.name)
    try:
        state, config = payload["state"], payload["config"]
        weights = state["online"] if "online" in state else state["agent"]["online"]
        obs_shape = saved_obs_shape(state)
        network = make_q_network(config.get("network", "auto"), obs_shape, state["n_actions"], config["hidden"])
        network.load_state_dict(weights)
        env_id = config["env"]
    except (KeyError, TypeError, RuntimeError) as exc:
        reason = f"no {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise DataError(f"{path}: not a DQN policy checkpoint ({reason})") from None
    if not all(torch.isfinite(p).all() for p in network.parameters()):
        raise DataError(f"{path}: the Q-network holds NaN or infinite weights (training diverged)")
    network.eval()
    return Policy(network, env_id, obs_shape, state["n_actions"], path, run_dir, bool(config.get("pixels", False)))


def saved_obs_shape(state: dict[str, Any]) -> tuple[int, ...]:
    """The observation shape a checkpoint was trained on (checkpoints before frames hold ``obs_dim`` alone)."""
    return tuple(state["obs_shape"]) if "obs_shape" in state else (int(state["obs_dim"]),)
