"""INTERIM, removed when issue 16 is merged into ``training.py``: DQN on Atari frames, act / remember / learn only.

``benchmarks/rl_atari.py`` measures mltk's speed and memory on Atari with it before the real loop
takes frame envs. It is ``training.py``'s loop cut to what the benchmark times, on the new blocks:
``atari.make_atari_vector_env`` and ``atari.LossSignals`` (clipped rewards and lost lives for the
loss, raw game scores reported), ``frames.FrameReplay`` and ``networks.make_q_network``. No
evaluation, checkpoint or run directory: the merge puts these blocks into ``training.py`` (and an
observation shape and a network kind into ``dqn.DQN``) and deletes this module.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mltoolkit.core.device import resolve_device, seed_everything, set_threads
from mltoolkit.rl.adam import Adam
from mltoolkit.rl.atari import LossSignals, make_atari_vector_env
from mltoolkit.rl.config import DQNConfig
from mltoolkit.rl.dqn import DQN, epsilon_at
from mltoolkit.rl.envs import real_next_obs
from mltoolkit.rl.frames import FrameReplay
from mltoolkit.rl.networks import NetworkKind, make_q_network
from mltoolkit.rl.training import _crossed


class FramesDQN(DQN):
    """``dqn.DQN`` with its network chosen by observation shape (``dqn.DQN`` takes an ``obs_dim`` today)."""

    def __init__(
        self, obs_shape: tuple[int, ...], n_actions: int, config: DQNConfig, device: torch.device, network: NetworkKind
    ) -> None:
        self.config, self.device, self.n_actions = config, device, n_actions
        self.online = make_q_network(network, obs_shape, n_actions, config.hidden).to(device)
        self.target = make_q_network(network, obs_shape, n_actions, config.hidden).to(device)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = Adam(self.online.parameters(), lr=config.learning_rate)

    @torch.no_grad()
    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """uint8 frames travel to the device as they are (4x less than float32); the network scales them."""
        return self.online(torch.as_tensor(obs, device=self.device)).argmax(dim=1).cpu().numpy()


def train_on_frames(config: DQNConfig, replay_dir: str | Path, network: NetworkKind = "auto") -> dict[str, Any]:
    """Train on ``config.env`` (an ALE id) for ``config.total_steps``; speed after learning starts and game scores."""
    set_threads(config.threads)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    envs = make_atari_vector_env(config.env, config.num_envs, threads=config.threads)
    obs_shape, n_actions = envs.single_observation_space.shape, int(envs.single_action_space.n)
    agent = FramesDQN(obs_shape, n_actions, config, device, network)
    memory = FrameReplay(replay_dir, config.buffer_size, obs_shape, config.num_envs)
    signals = LossSignals()
    rng = np.random.default_rng(config.seed)
    obs, info = envs.reset(seed=config.seed)
    signals.reset(info)
    score, scores = np.zeros(config.num_envs), []
    step, learning_from = 0, None
    while step < config.total_steps:
        epsilon = epsilon_at(step, config)
        explore = rng.random(config.num_envs) < epsilon
        actions = rng.integers(n_actions, size=config.num_envs)
        if not explore.all():
            actions = np.where(explore, actions, agent.greedy(obs))
        next_obs, rewards, terminated, truncated, info = envs.step(actions)
        done = terminated | truncated
        loss_rewards, loss_terminated = signals(rewards, terminated, truncated, info)
        memory.add(obs, actions, loss_rewards, real_next_obs(next_obs, done, info), loss_terminated)
        obs = next_obs
        score += rewards
        for i in np.flatnonzero(done):
            scores.append(float(score[i]))
            score[i] = 0.0
        before, step = step, step + config.num_envs
        if step >= config.learning_starts:
            learning_from = learning_from or (step, time.perf_counter())
            if _crossed(before, step, config.train_freq):
                for _ in range(config.gradient_steps):
                    agent.update(memory.sample(config.batch_size, rng))
        if _crossed(before, step, config.target_update_interval):
            agent.hard_update()
    envs.close()
    learning_steps = step - learning_from[0] if learning_from else 0
    return {
        "steps": step,
        "games": len(scores),
        "scores": scores,
        "learning_steps_per_s": learning_steps / (time.perf_counter() - learning_from[1]) if learning_steps else None,
        "replay_transitions": len(memory),
    }
