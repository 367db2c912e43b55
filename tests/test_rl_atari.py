"""Frames for DQN: the ALE preprocessing chain, image envs of any layout, rendered pixels, the loss's signals."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from mltoolkit.core.errors import DataError  # noqa: E402
from mltoolkit.rl.atari import (  # noqa: E402
    LossSignals,
    ale_protocol,
    frames_of,
    image_layout,
    is_ale,
    make_atari_vector_env,
    make_frames_vector_env,
    play_games,
    register_ale,
)
from mltoolkit.rl.envs import real_next_obs  # noqa: E402


def test_ale_ids_are_recognised_and_registered_only_when_asked_for():
    for env_id in ("ALE/Pong-v5", "ALE/MontezumaRevenge-v5", "PongNoFrameskip-v4", "Breakout-v4"):
        assert is_ale(env_id), env_id
    for env_id in ("CartPole-v1", "CartPole-v0", "MountainCar-v0", "NoSuchGame-v4", "my.module:Env-v0"):
        assert not is_ale(env_id), env_id
    code = (
        "import sys; from mltoolkit.rl.atari import register_ale; register_ale('CartPole-v1'); "
        "assert 'ale_py' not in sys.modules; register_ale('ALE/Pong-v5'); import gymnasium; "
        "assert 'ale_py' in sys.modules and 'ALE/Pong-v5' in gymnasium.registry"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_protocol_keeps_each_ids_sticky_actions_under_the_same_preprocessing():
    register_ale("ALE/Pong-v5")
    v5, v4 = ale_protocol("ALE/Pong-v5"), ale_protocol("PongNoFrameskip-v4")
    assert v5["sticky_actions"] == 0.25 and v4["sticky_actions"] == 0.0
    assert v5["game"] == v4["game"] == "pong"
    assert v5["frame_skip"] == v4["frame_skip"] == 4 and v5["noop_max"] == 30
    assert v5["max_frames_per_episode"] == 108_000


def test_an_ale_game_steps_as_stacked_uint8_frames_with_raw_scores_and_lives_ending_training_episodes():
    envs = make_atari_vector_env("BreakoutNoFrameskip-v4", num_envs=2)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert envs.single_action_space.n == 4
    signals = LossSignals()
    signals.reset(info)
    rng = np.random.default_rng(0)
    lives_lost = games = 0
    for _ in range(400):
        next_obs, rewards, terminated, truncated, info = envs.step(rng.integers(0, 4, size=2))
        done = terminated | truncated
        clipped, loss_terminated = signals(rewards, terminated, truncated, info)
        assert set(np.unique(clipped)) <= {-1.0, 0.0, 1.0} and loss_terminated.dtype == np.float32
        lives_lost += int(np.count_nonzero(loss_terminated.astype(bool) & ~done))
        games += int(done.sum())
        assert real_next_obs(next_obs, done, info).shape == (2, 4, 84, 84)
        assert not np.array_equal(next_obs, obs)  # the stack moves every step
        obs = next_obs
    envs.close()
    assert lives_lost >= 2  # a random Breakout player loses a life every ~30 steps; the game goes on


def test_full_games_are_scored_raw_and_each_depends_on_its_seed_only():
    def fire(frames):  # Breakout: launch the ball, never move: five lives lost in a few hundred steps
        return np.ones(len(frames), dtype=np.int64)

    one_at_a_time = play_games(fire, "BreakoutNoFrameskip-v4", games=3, seed=4, parallel=1)
    together = play_games(fire, "BreakoutNoFrameskip-v4", games=3, seed=4, parallel=2)
    for a, b in zip(one_at_a_time, together):
        assert np.array_equal(a, b)
    scores, lengths = one_at_a_time
    assert (lengths > 50).all() and len(set(lengths.tolist())) > 1  # no-op starts differ by seed


def test_loss_signals_clip_rewards_and_end_training_episodes_at_a_lost_life_only():
    signals = LossSignals()
    signals.reset({"lives": np.array([3, 3, 1])})
    no = np.zeros(3, dtype=bool)
    rewards, terminated = signals(np.array([7.0, -3.0, 0.0]), no, no, {"lives": np.array([3, 2, 5])})
    assert rewards.tolist() == [1.0, -1.0, 0.0]  # the raw 7 and -3 stay the env's, for the reported score
    assert terminated.tolist() == [0.0, 1.0, 0.0]  # env 2 went from 1 to 5 lives: a game over, not a loss
    game_over = np.array([False, False, True])
    _, terminated = signals(np.zeros(3), game_over, no, {"lives": np.array([3, 2, 5])})
    assert terminated.tolist() == [0.0, 0.0, 1.0]
    assert LossSignals(clip_rewards=False)(np.array([7.0]), no[:1], no[:1], {})[0].tolist() == [7.0]


class _Picture(gym.Env):
    """An image env: a fixed random picture per step number, in the layout asked for."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.layout, self.t = shape, 0

    def _obs(self) -> np.ndarray:
        image = np.random.default_rng(self.t).integers(0, 256, (90, 120, 3), dtype=np.uint8)
        if len(self.layout) == 2:
            return image[..., 0]
        if self.layout[0] in (1, 3):
            return np.moveaxis(image[..., : self.layout[0]], -1, 0)
        return image[..., : self.layout[-1]]

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, self.t >= 5, False, {}


def test_image_envs_in_either_layout_give_the_same_stacked_grayscale_frames():
    stacks = {}
    for shape in ((90, 120, 3), (3, 90, 120)):
        env = frames_of(_Picture(shape), "Picture-v0")
        obs, _ = env.reset()
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and env.observation_space.shape == (4, 84, 84)
        assert all(np.array_equal(frame, obs[0]) for frame in obs)  # a first observation is padded with itself
        stacks[shape] = env.step(0)[0]
    assert np.array_equal(stacks[(90, 120, 3)], stacks[(3, 90, 120)])
    for shape in ((90, 120, 1), (1, 90, 120), (90, 120)):
        assert frames_of(_Picture(shape), "Picture-v0").reset()[0].shape == (4, 84, 84), shape


def test_an_unsupported_image_layout_is_exit_3_naming_the_shape():
    with pytest.raises(DataError, match=r"\(84, 84, 5\)") as error:
        image_layout((84, 84, 5), "Odd-v0")
    assert error.value.exit_code == 3
    with pytest.raises(DataError, match=r"\(2, 4, 84, 84\)"):
        image_layout((2, 4, 84, 84), "Odd-v0")


def test_pixels_render_a_vector_env_to_stacked_frames():
    envs = make_frames_vector_env("CartPole-v1", num_envs=2, pixels=True)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8 and obs.std() > 0
    for _ in range(30):  # past the end of some episodes: same-step autoreset keeps the shape
        obs, rewards, terminated, truncated, info = envs.step(np.array([0, 1]))
        assert real_next_obs(obs, terminated | truncated, info).shape == (2, 4, 84, 84)
    envs.close()
