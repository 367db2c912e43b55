"""Deep Q-learning (Mnih et al. 2015) with the usual fixes, in one screen.

- The Q-network (``networks.make_q_network``: an MLP for vectors, the Nature CNN for stacked frames) maps an
  observation to one value per action, ``Q(s, a)``.
- ``td_targets``: the Bellman target ``r + gamma * max_a' Q_target(s', a')``, not bootstrapped past a
  *terminated* step (a *truncated* one, a time limit, still bootstraps: the task did not end there).
  Double DQN picks ``a'`` with the online network and values it with the target network.
- ``DQN.update``: Huber (smooth L1) loss between ``Q(s, a)`` and the target on a replay batch,
  gradient-norm clipping, Adam (``adam.py``); the target network follows by hard copies or soft (Polyak) updates.
- ``epsilon_at``: epsilon-greedy exploration, decayed linearly or exponentially with the step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mltoolkit.rl.adam import Adam
from mltoolkit.rl.config import DQNConfig
from mltoolkit.rl.networks import make_q_network


def epsilon_at(step: int, config: DQNConfig) -> float:
    """Exploration rate after ``step`` environment steps."""
    start, end, span = config.epsilon_start, config.epsilon_end, max(1, config.exploration_steps)
    if config.exploration == "exponential":
        return end + (start - end) * math.exp(-step / span)
    return end + (start - end) * max(0.0, 1.0 - step / span)


def td_targets(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q_target: torch.Tensor,
    gamma: float,
    next_q_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """``r + gamma * (1 - terminated) * Q_target(s', a')``; ``a'`` from the online net when given (Double DQN)."""
    if next_q_online is None:
        next_value = next_q_target.max(dim=1).values
    else:
        next_value = next_q_target.gather(1, next_q_online.argmax(dim=1, keepdim=True)).squeeze(1)
    return rewards + gamma * (1.0 - terminated) * next_value


class DQN:
    """The learner: online and target networks, optimizer, and one gradient step on a replay batch."""

    def __init__(self, obs_shape: Sequence[int], n_actions: int, config: DQNConfig, device: torch.device) -> None:
        self.config, self.device, self.n_actions = config, device, n_actions
        # CPU convolutions (oneDNN) run ~10% faster on channels_last weights; an MLP has none to convert
        layout = torch.channels_last if device.type == "cpu" else torch.preserve_format
        self.online, self.target = (
            make_q_network(config.network, obs_shape, n_actions, config.hidden).to(device, memory_format=layout)
            for _ in range(2)
        )
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = Adam(self.online.parameters(), lr=config.learning_rate)

    @torch.no_grad()
    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """``argmax_a Q(s, a)`` for a batch of observations; uint8 frames travel as they are (the CNN scales them)."""
        dtype = None if obs.dtype == np.uint8 else torch.float32
        q = self.online(torch.as_tensor(obs, dtype=dtype, device=self.device))
        return q.argmax(dim=1).cpu().numpy()

    def update(self, batch: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """One gradient step on ``(obs, actions, rewards, next_obs, terminated)``; returns (loss, mean Q(s, a)).

        Both come back as tensors, read only when logged: ``.item()`` every step would make a GPU wait.
        Frames stay uint8 on the way to the device, 4x less to copy than float32; the CNN converts them there.
        """
        obs, actions, rewards, next_obs, terminated = (
            torch.from_numpy(x).to(self.device, non_blocking=True) for x in batch
        )
        size = obs.shape[0]
        if self.config.double_dqn:  # one forward pass for Q(s, .) and Q(s', .)
            q_both = self.online(torch.cat([obs, next_obs]))
            q_all, next_q_online = q_both[:size], q_both[size:].detach()
        else:
            q_all, next_q_online = self.online(obs), None
        with torch.no_grad():
            targets = td_targets(rewards, terminated, self.target(next_obs), self.config.gamma, next_q_online)
        q_taken = q_all.gather(1, actions.unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q_taken, targets)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return loss.detach(), q_taken.detach().mean()

    @torch.no_grad()
    def soft_update(self) -> None:
        """Polyak averaging: ``target <- tau * online + (1 - tau) * target``."""
        torch._foreach_lerp_(list(self.target.parameters()), list(self.online.parameters()), self.config.tau)

    def hard_update(self) -> None:
        self.target.load_state_dict(self.online.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
