"""Replay memory: a preallocated ring buffer of transitions, sampled uniformly at random.

The buffer is DQN's training set. Sampling it at random breaks the correlation between consecutive
steps that would otherwise make the Q-network chase its own latest experience. Arrays are numpy
and allocated once, so adding a transition is a few array writes and sampling a batch is one
fancy-index per field: no per-transition Python objects, no deque of tuples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")


class ReplayBuffer:
    """Fixed-capacity memory of ``(obs, action, reward, next_obs, terminated)``; the oldest is overwritten.

    ``terminated`` is stored, not ``done``: a time-limit truncation is not the end of the task, so
    its transition still bootstraps from ``next_obs`` (gymnasium 1.x semantics).
    """

    def __init__(self, capacity: int, obs_dim: int) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.position = 0  # where the next transition goes
        self.size = 0

    @staticmethod
    def bytes_per_transition(obs_dim: int) -> int:
        """Memory one transition takes (what the capacity multiplies), read off a one-slot buffer."""
        one = ReplayBuffer(1, obs_dim)
        return sum(getattr(one, name).nbytes for name in FIELDS)

    def __len__(self) -> int:
        return self.size

    def add(
        self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray, terminated: np.ndarray
    ) -> None:
        """Store a batch of transitions (one per vector environment) at the ring's write position."""
        count = len(actions)
        end = self.position + count
        index = slice(self.position, end) if end <= self.capacity else np.arange(self.position, end) % self.capacity
        self.obs[index] = obs
        self.actions[index] = actions
        self.rewards[index] = rewards
        self.next_obs[index] = next_obs
        self.terminated[index] = terminated
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """A uniformly random batch (with replacement): obs, actions, rewards, next_obs, terminated."""
        index = rng.integers(0, self.size, size=batch_size)
        return tuple(getattr(self, name)[index] for name in FIELDS)

    def state_dict(self) -> dict[str, Any]:
        """The filled part as tensors (checkpoints hold tensors and numbers only)."""
        import torch

        return {
            "capacity": self.capacity,
            "position": self.position,
            "size": self.size,
            **{name: torch.from_numpy(getattr(self, name)[: self.size].copy()) for name in FIELDS},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"checkpoint holds {size} transitions, more than the buffer's capacity {self.capacity}")
        for name in FIELDS:
            getattr(self, name)[:size] = state[name].numpy()
        self.size = size
        self.position = int(state["position"]) % self.capacity
