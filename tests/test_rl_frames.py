"""The frame replay memory against a naive one that keeps every (obs, next_obs) pair whole."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mltoolkit.core.errors import DataError
from mltoolkit.rl.frames import FrameReplay, check_frame_replay_fits, frame_replay_bytes

STACK, FRAME = 4, (6, 5)
ROOT = Path(__file__).resolve().parent.parent


class StackedEpisodes:
    """Vector environments whose observations are stacks of random frames, like FrameStackObservation:
    a first observation padded with copies of its frame (``reset``) or zeros, random episode lengths
    ending in a termination or a truncation (then, as with same-step autoreset, the true last
    observation goes to memory and the next one starts a new episode)."""

    def __init__(self, num_envs: int, padding: str, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.padding = padding
        self.obs = np.stack([self._first() for _ in range(num_envs)])

    def _frame(self) -> np.ndarray:
        return self.rng.integers(0, 256, size=FRAME, dtype=np.uint8)

    def _first(self) -> np.ndarray:
        frame = self._frame()
        pad = frame if self.padding == "reset" else np.zeros_like(frame)
        return np.stack([pad] * (STACK - 1) + [frame])

    def step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(obs, next_obs, terminated)`` of one step of every environment; advances to the next obs."""
        obs = self.obs.copy()
        next_obs = np.concatenate([obs[:, 1:], np.stack([self._frame() for _ in obs])[:, None]], axis=1)
        ends = self.rng.random(len(obs)) < 0.08
        terminated = ends & (self.rng.random(len(obs)) < 0.5)
        self.obs = np.stack([self._first() if end else o for end, o in zip(ends, next_obs)])
        return obs, next_obs, terminated


def _fill(memory: FrameReplay | None, env: StackedEpisodes, steps: int, first_id: int, reference: dict) -> int:
    """Add ``steps`` vector steps; ``reference`` maps each transition's id (its reward) to the whole of it."""
    next_id = first_id
    for _ in range(steps):
        obs, next_obs, terminated = env.step()
        ids = np.arange(next_id, next_id + len(obs), dtype=np.float32)
        actions = env.rng.integers(0, 6, size=len(obs))
        if memory is not None:
            memory.add(obs, actions, ids, next_obs, terminated.astype(np.float32))
        for i, transition_id in enumerate(ids):
            reference[float(transition_id)] = (obs[i], actions[i], next_obs[i], float(terminated[i]))
        next_id += len(obs)
    return next_id


def _check_against(memory: FrameReplay, reference: dict, draws: int, seed: int) -> set[float]:
    obs, actions, rewards, next_obs, terminated = memory.sample(draws, np.random.default_rng(seed))
    assert obs.shape == next_obs.shape == (draws, STACK, *FRAME) and obs.dtype == np.uint8
    assert actions.dtype == np.int64 and rewards.dtype == np.float32 and terminated.dtype == np.float32
    for i in range(draws):
        ref_obs, ref_action, ref_next, ref_terminated = reference[float(rewards[i])]
        assert np.array_equal(obs[i], ref_obs), f"obs of transition {rewards[i]}"
        assert np.array_equal(next_obs[i], ref_next), f"next_obs of transition {rewards[i]}"
        assert actions[i] == ref_action and terminated[i] == ref_terminated
    return set(rewards.tolist())


@pytest.mark.parametrize(("num_envs", "padding"), [(1, "reset"), (3, "reset"), (2, "zeros")])
def test_sampled_transitions_equal_the_naive_reference_across_episodes_and_wraparound(tmp_path, num_envs, padding):
    memory = FrameReplay(tmp_path / "replay", 150 * num_envs, (STACK, *FRAME), num_envs)
    env, reference = StackedEpisodes(num_envs, padding, seed=num_envs), {}
    last_id = _fill(memory, env, 600, 0, reference)  # the ring wraps around four times
    sampled = _check_against(memory, reference, 3000, seed=1)
    assert len(memory) == np.count_nonzero(memory.valid) and len(memory) <= memory.capacity
    assert min(sampled) >= last_id - 150 * num_envs  # only what the ring still holds
    recent = set(np.arange(last_id - 40 * num_envs, last_id, dtype=np.float32).tolist())
    assert recent <= sampled  # and every recent transition is there to be drawn


def test_every_first_observation_and_episode_end_is_rebuilt_exactly(tmp_path):
    memory = FrameReplay(tmp_path / "replay", 10_000, (STACK, *FRAME), 2)
    env, reference = StackedEpisodes(2, "reset", seed=5), {}
    last_id = _fill(memory, env, 400, 0, reference)
    sampled = _check_against(memory, reference, 20_000, seed=2)
    assert sampled == set(np.arange(last_id, dtype=np.float32).tolist())  # nothing lost before the ring is full
    assert len(memory) == last_id


def test_reopened_memory_samples_the_same_and_keeps_what_was_written_after_the_checkpoint(tmp_path):
    memory = FrameReplay(tmp_path / "replay", 400, (STACK, *FRAME), 2)
    env, reference = StackedEpisodes(2, "reset", seed=7), {}
    next_id = _fill(memory, env, 150, 0, reference)
    state = memory.state_dict()
    before = memory.sample(64, np.random.default_rng(3))
    reopened = FrameReplay.open(tmp_path / "replay", 400, (STACK, *FRAME), 2)
    reopened.load_state_dict(state)
    after = reopened.sample(64, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(before, after)) and len(reopened) == len(memory)
    _fill(memory, env, 20, next_id, reference)  # written after the checkpoint, then "kill -9": no flush
    killed = FrameReplay.open(tmp_path / "replay", 400, (STACK, *FRAME), 2)
    assert len(killed) == len(memory)
    _fill(killed, StackedEpisodes(2, "reset", seed=8), 100, 10_000, reference)  # resumed: new episodes
    _check_against(killed, reference, 2000, seed=4)


def test_after_kill_9_mid_write_the_reopened_memory_holds_only_whole_transitions(tmp_path):
    writer = (
        "import sys; from tests.test_rl_frames import FrameReplay, StackedEpisodes, _fill\n"
        f"memory = FrameReplay({str(tmp_path / 'replay')!r}, 400, (4, 6, 5), 2)\n"
        "env, step = StackedEpisodes(2, 'reset', seed=9), 0\n"
        "while True:\n"
        "    step = _fill(memory, env, 1, step, {})\n"
        "    if step == 2000: print('wrapped', flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", writer], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "wrapped\n"  # the ring has wrapped around a few times: kill it mid-stream
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed = FrameReplay.open(tmp_path / "replay", 400, (STACK, *FRAME), 2)
    assert 0 < len(killed) <= 400
    reference: dict = {}
    _fill(None, StackedEpisodes(2, "reset", seed=9), int(killed.rewards.max()) // 2 + 1, 0, reference)
    _check_against(killed, reference, 2000, seed=5)
    _fill(killed, StackedEpisodes(2, "zeros", seed=10), 50, 10**6, reference)  # resumed: new episodes
    _check_against(killed, reference, 2000, seed=6)


def test_a_checkpoint_of_another_memory_or_a_missing_directory_is_refused(tmp_path):
    memory = FrameReplay(tmp_path / "replay", 100, (STACK, *FRAME))
    with pytest.raises(ValueError, match="200"):
        memory.load_state_dict({**memory.state_dict(), "capacity": 200})
    with pytest.raises(DataError, match="no replay memory"):
        FrameReplay.open(tmp_path / "replay", 100, (STACK, 8, 8))
    with pytest.raises(DataError, match="no replay memory"):
        FrameReplay.open(tmp_path / "elsewhere", 100, (STACK, *FRAME))
    with pytest.raises(DataError, match="at least 10"):
        FrameReplay(tmp_path / "tiny", 9, (STACK, *FRAME), 2)


def test_sampling_an_empty_memory_is_an_error_not_a_hang(tmp_path):
    with pytest.raises(ValueError, match="no complete transition"):
        FrameReplay(tmp_path / "replay", 100, (STACK, *FRAME)).sample(8, np.random.default_rng(0))


def test_a_million_atari_frames_take_about_7_1_gb_computed_without_allocating():
    nbytes = frame_replay_bytes(1_000_000, (4, 84, 84))
    assert 7.0e9 < nbytes < 7.2e9  # 84 * 84 bytes of frame + 14 of action, reward and flags per transition
    assert nbytes < 2 * 1_000_000 * 4 * 84 * 84 / 7  # SB3 keeps two 4-frame stacks per transition


def test_a_capacity_beyond_the_available_memory_is_refused_with_one_that_fits(monkeypatch):
    monkeypatch.setattr("mltoolkit.core.device.available_memory", lambda: 8 * 2**30)
    check_frame_replay_fits(1_000_000, (4, 84, 84))  # 6.6 GiB
    with pytest.raises(DataError, match=r"--buffer-size 2000000 .* at most --buffer-size 1214") as error:
        check_frame_replay_fits(2_000_000, (4, 84, 84))
    fits = int(re.search(r"at most --buffer-size (\d+)", str(error.value)).group(1))
    check_frame_replay_fits(fits, (4, 84, 84))
