"""The INTERIM Atari loop (frames_interim.py, until training.py takes Atari ids) runs the new blocks together."""

from __future__ import annotations

import pytest

pytest.importorskip("ale_py")

from mltoolkit.rl.config import DQNConfig  # noqa: E402
from mltoolkit.rl.frames_interim import train_on_frames  # noqa: E402


def test_a_few_hundred_pong_steps_fill_the_frame_memory_and_train_the_cnn(tmp_path):
    config = DQNConfig(
        env="PongNoFrameskip-v4", total_steps=240, num_envs=2, buffer_size=1000, learning_starts=200, batch_size=8,
        train_freq=4, target_update_interval=20, exploration_steps=100, device="cpu", threads=1,
    )  # fmt: skip
    result = train_on_frames(config, tmp_path / "replay")
    assert result["steps"] == 240 and result["replay_transitions"] == 240
    assert result["learning_steps_per_s"] > 0
    assert (tmp_path / "replay" / "frames.npy").stat().st_size > 1000 * 84 * 84  # the frames live in the run's files
