"""Gymnasium environments for DQN: check the id and the spaces, make training and evaluation envs.

DQN picks ``argmax_a Q(s, a)`` over a finite set of actions, so it needs a discrete action space. It
sees either a flat observation vector (the MLP) or a stack of 84x84 grayscale frames (the CNN): Atari
games through ale-py, any env with image observations, or any env's rendered screen with ``pixels``
(``atari.py`` makes those). Anything else is refused with the reason (exit 3) rather than failing deep
inside the network.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.errors import DataError, ResourceError

if TYPE_CHECKING:
    import gymnasium as gym


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id`` (``module:Env-v0`` imports ``module`` first); unknown ids list close ones."""
    import gymnasium as gym

    from mltoolkit.rl.atari import register_ale

    if ":" in env_id:
        module, env_id = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise DataError(f"cannot import {module!r} to register {env_id!r} ({exc})") from None
    register_ale(env_id)
    try:
        return gym.spec(env_id)
    except gym.error.Error:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see gymnasium.pprint_registry() for the ids"
        raise DataError(f"unknown gymnasium environment {env_id!r}{hint}") from None


def observes_frames(env_id: str, pixels: bool = False) -> bool:
    """Does DQN see this env as stacked frames: an Atari game, an image observation, or ``pixels``?"""
    from gymnasium import spaces

    from mltoolkit.rl.atari import is_ale

    spec = env_spec(env_id)
    if pixels or is_ale(spec.id):
        return True
    env = _make(spec)
    space = env.observation_space
    env.close()
    return isinstance(space, spaces.Box) and len(space.shape) >= 2


def _make(spec: gym.envs.registration.EnvSpec, render_mode: str | None = None) -> gym.Env:
    """``gym.make``, its optional dependencies turned into exit 4 with the install command."""
    import gymnasium as gym

    try:
        return gym.make(spec, **({"render_mode": render_mode} if render_mode else {}))
    except gym.error.DependencyNotInstalled as exc:
        raise ResourceError(f"{spec.id} needs an extra package: {exc}") from None


def make_env(env_id: str, render_mode: str | None = None, pixels: bool = False) -> gym.Env:
    """One environment as DQN sees it: its own observations, or stacked frames (``observes_frames``)."""
    from mltoolkit.rl import atari

    spec = env_spec(env_id)
    if atari.is_ale(spec.id):
        return atari.make_atari_env(spec.id, render_mode)
    if observes_frames(spec.id, pixels):
        return atari.make_frames_env(spec.id, pixels, render_mode)
    return _make(spec, render_mode)


def check_spaces(env: gym.Env | gym.vector.VectorEnv, env_id: str) -> tuple[tuple[int, ...], int]:
    """``(observation shape, number of actions)``, or exit 3 saying why DQN does not apply."""
    from gymnasium import spaces

    action_space = getattr(env, "single_action_space", env.action_space)
    obs_space = getattr(env, "single_observation_space", env.observation_space)
    if not isinstance(action_space, spaces.Discrete):
        raise DataError(
            f"{env_id} has a {type(action_space).__name__} action space {action_space}; DQN picks the best of a "
            "finite set of actions, so it needs a Discrete one (continuous actions call for SAC, TD3 or PPO)"
        )
    frames = isinstance(obs_space, spaces.Box) and obs_space.dtype == np.uint8 and len(obs_space.shape) == 3
    if not (frames or isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1):
        raise DataError(
            f"{env_id} has observations {obs_space}; mltk's DQN takes a flat observation vector or images "
            "(a Box of uint8, height x width x channels or channels x height x width)"
        )
    return tuple(int(n) for n in obs_space.shape), int(action_space.n)


def make_vector_env(env_id: str, num_envs: int, pixels: bool = False, threads: int = 1) -> gym.vector.VectorEnv:
    """``num_envs`` copies stepped together: ale-py's ``AtariVectorEnv`` for Atari, else gymnasium's SyncVectorEnv.

    Same-step autoreset: a finished episode's last observation arrives in ``info["final_obs"]`` and
    the returned observation is already the next episode's first, so every step is a real transition.
    """
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    from mltoolkit.rl import atari

    spec = env_spec(env_id)
    if atari.is_ale(spec.id):
        return atari.make_atari_vector_env(spec.id, num_envs, threads)
    if observes_frames(spec.id, pixels):
        return atari.make_frames_vector_env(spec.id, num_envs, pixels)
    try:
        return gym.make_vec(
            spec,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
    except gym.error.DependencyNotInstalled as exc:
        raise ResourceError(f"{spec.id} needs an extra package: {exc}") from None


def play_episodes(
    policy: Any, env_id: str, episodes: int, seed: int, pixels: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of greedy episodes; an Atari episode is a full game, scored raw (``atari.play_games``)."""
    from mltoolkit.rl.atari import is_ale, play_games

    if is_ale(env_spec(env_id).id):
        return play_games(policy, env_spec(env_id).id, episodes, seed)
    return run_episodes(policy, env_id, episodes, seed, pixels=pixels)


def real_next_obs(next_obs: np.ndarray, done: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """Replace auto-reset observations by the true last observation of the episodes that just ended."""
    if not done.any():
        return next_obs
    fixed = next_obs.copy()
    for i in np.flatnonzero(done):
        fixed[i] = info["final_obs"][i]
    return fixed


def run_episodes(
    policy: Any, env_id: str, episodes: int, seed: int, parallel: int = 16, pixels: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Play ``episodes`` greedy episodes; episode ``i`` starts from ``reset(seed=seed + i)``.

    ``policy(obs_batch) -> actions`` is called on up to ``parallel`` environments at once, so one
    forward pass serves many episodes. Each episode depends only on its seed and the policy, so the
    returns do not depend on ``parallel``.
    """
    envs = [make_env(env_id, pixels=pixels) for _ in range(min(parallel, episodes))]
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    slots: list[int] = []  # the episode each env plays, or -1 when it is idle
    obs: list[np.ndarray] = []
    next_episode = 0
    for env in envs:
        first, _ = env.reset(seed=seed + next_episode)
        slots.append(next_episode)
        obs.append(first)
        next_episode += 1
    while any(slot >= 0 for slot in slots):
        active = [i for i, slot in enumerate(slots) if slot >= 0]
        actions = policy(np.stack([obs[i] for i in active]))
        for i, action in zip(active, actions):
            episode = slots[i]
            obs[i], reward, terminated, truncated, _ = envs[i].step(int(action))
            returns[episode] += float(reward)
            lengths[episode] += 1
            if terminated or truncated:
                if next_episode < episodes:
                    obs[i], _ = envs[i].reset(seed=seed + next_episode)
                    slots[i] = next_episode
                    next_episode += 1
                else:
                    slots[i] = -1
    for env in envs:
        env.close()
    return returns, lengths
