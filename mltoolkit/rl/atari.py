"""Environments that DQN sees as stacked 84x84 grayscale frames: Atari games, other image envs, rendered pixels.

Atari (any ALE id: ``ALE/Pong-v5``, ``PongNoFrameskip-v4``) runs in ale-py's own ``AtariVectorEnv``,
which does the preprocessing of Mnih et al. (2015) / Machado et al. (2018) in C++ threads, so no
emulator glue is written here: no-op reset (up to 30), the action repeated 4 frames with the max of
the last two (flicker), 84x84 grayscale, a stack of 4, fire on reset for games that need it, episodes
capped at 108,000 frames (30 minutes). The emulator underneath steps one frame at a time whatever the
id says; an id keeps its own sticky actions (``-v5`` and ``-v0``: the previous action repeats with
probability 0.25; ``-v4``: never), and ``ale_protocol`` states all of it for ``config.json``.

The game is never cut short: an env episode is a full game, so its summed raw reward is the score
that is reported. What the loss sees is made separately by ``LossSignals``: rewards clipped to their
sign, and a lost life as the end of the episode (no bootstrapping past it), for training only.

Any other gymnasium env whose observation is an image (``Box`` of uint8, HxWxC, CxHxW or HxW) gets
the same frames (grayscale, 84x84, a stack of 4) from gymnasium's wrappers, and ``pixels=True`` makes
any env (``CartPole-v1``) observed through its rendering, as in the original PyTorch DQN tutorial.
"""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.device import available_cores
from mltoolkit.core.errors import DataError, ResourceError

if TYPE_CHECKING:
    import gymnasium as gym

FRAME_SIDE = 84
STACK = 4
FRAME_SKIP = 4
NOOP_MAX = 30
_MAYBE_ALE = re.compile(r"ALE/\w+-v\d+|[A-Z]\w*-v[04]")  # ALE/Pong-v5, Pong[NoFrameskip]-v0|v4


def register_ale(env_id: str) -> None:
    """Register ale-py's ids with gymnasium when ``env_id`` may be one of them, not before (the import takes time)."""
    import gymnasium as gym

    if env_id in gym.registry or not _MAYBE_ALE.fullmatch(env_id):
        return
    try:
        import ale_py
    except ImportError:
        raise ResourceError(f"{env_id} needs ale-py: pip install ale-py") from None
    gym.register_envs(ale_py)


def is_ale(env_id: str) -> bool:
    """Is ``env_id`` an Atari game of ale-py (its ids registered first if it may be one)?"""
    import gymnasium as gym

    register_ale(env_id)
    spec = gym.registry.get(env_id)
    return spec is not None and spec.entry_point == "ale_py.env:AtariEnv"


def ale_protocol(env_id: str) -> dict[str, Any]:
    """How an ALE id is played and scored, for ``config.json`` and the docs (the id must be registered)."""
    import gymnasium as gym

    kwargs = gym.spec(env_id).kwargs
    return {
        "game": kwargs["game"],
        "sticky_actions": kwargs["repeat_action_probability"],
        "full_action_space": kwargs["full_action_space"],
        "frame_skip": FRAME_SKIP,
        "max_of_last_two_frames": True,
        "noop_max": NOOP_MAX,
        "fire_on_reset": True,
        "frames": f"{STACK} x {FRAME_SIDE}x{FRAME_SIDE} grayscale",
        "max_frames_per_episode": kwargs["max_num_frames_per_episode"],
        "training_episode_end": "life lost (the game continues)",
        "training_rewards": "sign of the reward",
        "reported_return": "raw score of full games",
    }


def make_atari_vector_env(env_id: str, num_envs: int, threads: int = 1) -> gym.vector.VectorEnv:
    """``num_envs`` games of an ALE id in ale-py's ``AtariVectorEnv``, same-step autoreset, raw rewards.

    ``info["lives"]`` holds the lives left (``LossSignals`` reads it); a finished game's last
    observation is in ``info["final_obs"]``.
    """
    from ale_py.vector_env import AtariVectorEnv
    from gymnasium.vector import AutoresetMode

    register_ale(env_id)
    protocol = ale_protocol(env_id)
    return AtariVectorEnv(
        protocol["game"],
        num_envs,
        num_threads=max(1, min(threads, num_envs, available_cores())),
        repeat_action_probability=protocol["sticky_actions"],
        full_action_space=protocol["full_action_space"],
        max_num_frames_per_episode=protocol["max_frames_per_episode"],
        autoreset_mode=AutoresetMode.SAME_STEP,
        img_height=FRAME_SIDE,
        img_width=FRAME_SIDE,
        grayscale=True,
        stack_num=STACK,
        frameskip=FRAME_SKIP,
        maxpool=True,
        noop_max=NOOP_MAX,
        use_fire_reset=True,
        episodic_life=False,
        reward_clipping=False,
    )


def play_games(
    policy: Any, env_id: str, games: int, seed: int, parallel: int = 8, threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores and lengths (agent steps) of ``games`` full games of an ALE id; game ``i`` is reset with ``seed + i``.

    ``policy(frames) -> actions`` plays up to ``parallel`` games at once; each game depends only on its
    seed and the policy, so the scores do not depend on ``parallel``. Lives lost do not end a game.
    """
    envs = make_atari_vector_env(env_id, min(parallel, games), threads)
    obs, _ = envs.reset(seed=seed)  # env i plays game i first
    slots = np.arange(envs.num_envs)  # the game each env plays, -1 once there is none left
    scores, lengths = np.zeros(games), np.zeros(games, dtype=np.int64)
    next_game = envs.num_envs
    while (slots >= 0).any():
        obs, rewards, terminated, truncated, _ = envs.step(np.asarray(policy(obs), dtype=np.int64))
        playing = slots >= 0
        scores[slots[playing]] += rewards[playing]
        lengths[slots[playing]] += 1
        ended = playing & (terminated | truncated)
        if ended.any():
            starts = np.flatnonzero(ended)[: games - next_game]
            slots[ended] = -1
            slots[starts] = np.arange(next_game, next_game + len(starts))
            next_game += len(starts)
            if len(starts):  # the autoreset was unseeded: start the next games from their own seeds
                mask = np.zeros(envs.num_envs, dtype=bool)
                mask[starts] = True
                obs, _ = envs.reset(seed=seed + slots[starts], options={"reset_mask": mask})
    envs.close()
    return scores, lengths


def image_layout(shape: tuple[int, ...], env_id: str) -> str:
    """``hwc``, ``chw`` or ``hw`` for an image observation of this shape, or exit 3 naming it."""
    if len(shape) == 2:
        return "hw"
    if len(shape) == 3 and shape[-1] in (1, 3):
        return "hwc"
    if len(shape) == 3 and shape[0] in (1, 3):
        return "chw"
    raise DataError(
        f"{env_id} has image observations of shape {shape}; expected height x width x channels or "
        "channels x height x width with 1 (gray) or 3 (RGB) channels, or height x width"
    )


def frames_of(env: gym.Env, env_id: str) -> gym.Env:
    """An image env seen as a stack of 4 grayscale 84x84 frames (uint8), with gymnasium's wrappers."""
    from gymnasium import spaces
    from gymnasium.wrappers import FrameStackObservation, GrayscaleObservation, TransformObservation
    from PIL import Image

    space = env.observation_space
    if not (isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3)):
        raise DataError(f"{env_id} has observations {space}; frames must be a Box of uint8 images")
    layout = image_layout(space.shape, env_id)
    if layout == "chw":
        height_width_channels = (*space.shape[1:], space.shape[0])
        env = TransformObservation(
            env, lambda obs: np.moveaxis(obs, 0, -1), spaces.Box(0, 255, height_width_channels, np.uint8)
        )
    height_width, channels = env.observation_space.shape[:2], env.observation_space.shape[2:]
    if channels == (3,):
        env = GrayscaleObservation(env)
    elif channels == (1,):
        env = TransformObservation(env, lambda obs: obs[..., 0], spaces.Box(0, 255, height_width, np.uint8))
    side = (FRAME_SIDE, FRAME_SIDE)
    env = TransformObservation(
        env,
        lambda obs: np.asarray(Image.fromarray(obs).resize(side, Image.Resampling.BILINEAR)),
        spaces.Box(0, 255, side, np.uint8),
    )
    return FrameStackObservation(env, STACK)


def make_frames_env(env_id: str, pixels: bool = False, render_mode: str | None = None) -> gym.Env:
    """An image env (or any env rendered, with ``pixels``) as stacked frames; ``render`` still shows the screen."""
    import gymnasium as gym
    from gymnasium.wrappers import AddRenderObservation

    try:
        render_mode = "rgb_array" if pixels else render_mode
        env = gym.make(env_id, **({"render_mode": render_mode} if render_mode else {}))
    except gym.error.DependencyNotInstalled as exc:
        raise ResourceError(f"{env_id} needs an extra package: {exc}") from None
    return frames_of(AddRenderObservation(env) if pixels else env, env_id)


def make_frames_vector_env(env_id: str, num_envs: int, pixels: bool = False) -> gym.vector.SyncVectorEnv:
    """``num_envs`` copies of ``make_frames_env``, same-step autoreset."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    return gym.vector.SyncVectorEnv(
        [partial(make_frames_env, env_id, pixels)] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP
    )


def make_atari_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """One game of an ALE id seen as ``make_atari_vector_env``'s frames (4 frames per step with the max of the
    last two, 84x84 gray, a stack of 4; no no-op start, no fire on reset) through gymnasium's wrappers, so that
    ``render`` shows the raw RGB screen (``evaluate --gif``); lives lost do not end its episodes."""
    import gymnasium as gym
    from gymnasium.wrappers import MaxAndSkipObservation

    register_ale(env_id)
    env = gym.make(env_id, frameskip=1, obs_type="grayscale", render_mode=render_mode)
    return frames_of(MaxAndSkipObservation(env, skip=FRAME_SKIP), env_id)


class LossSignals:
    """What the loss sees of an Atari step: rewards clipped to their sign and a lost life as an episode end.

    Clipping lets one learning rate serve games scored in ones and in thousands (Mnih et al. 2015);
    ending the episode at a lost life teaches that losing one is bad without waiting for the game
    over. Both are for training only: the env keeps playing the full game and its raw score is what
    is reported. Call ``reset`` with the info of ``envs.reset``, then once per step.
    """

    def __init__(self, clip_rewards: bool = True) -> None:
        self.clip_rewards = clip_rewards
        self.lives: np.ndarray | None = None

    def reset(self, info: dict[str, Any]) -> None:
        self.lives = info.get("lives")

    def __call__(
        self, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, info: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(rewards, terminated)`` for the replay memory."""
        lives = info.get("lives")
        if lives is not None and self.lives is not None:  # a finished game's lives are the next game's
            terminated = terminated | ((lives < self.lives) & ~(terminated | truncated))
        self.lives = lives
        rewards = np.sign(rewards) if self.clip_rewards else rewards
        return rewards.astype(np.float32), terminated.astype(np.float32)
