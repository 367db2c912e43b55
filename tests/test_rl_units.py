"""DQN building blocks: replay memory, Bellman targets (terminated vs truncated), exploration schedule."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mltoolkit.rl.config import DQNConfig  # noqa: E402
from mltoolkit.rl.dqn import epsilon_at, td_targets  # noqa: E402
from mltoolkit.rl.envs import real_next_obs  # noqa: E402
from mltoolkit.rl.replay import ReplayBuffer  # noqa: E402


def _add(buffer: ReplayBuffer, start: int, count: int) -> None:
    ids = np.arange(start, start + count)
    obs = np.stack([ids, -ids], axis=1).astype(np.float32)
    buffer.add(obs, ids % 3, ids.astype(np.float32), obs + 0.5, (ids % 2).astype(np.float32))


def test_replay_buffer_is_a_ring_that_overwrites_the_oldest():
    buffer = ReplayBuffer(capacity=5, obs_dim=2)
    _add(buffer, 0, 3)
    assert len(buffer) == 3 and buffer.position == 3
    _add(buffer, 3, 4)  # wraps around: 7 added, the 2 oldest (0, 1) are gone
    assert len(buffer) == 5 and buffer.position == 2
    assert sorted(buffer.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]
    for i in range(5):  # every stored transition is still consistent across fields
        r = int(buffer.rewards[i])
        assert buffer.obs[i].tolist() == [r, -r] and buffer.actions[i] == r % 3
        assert buffer.next_obs[i].tolist() == [r + 0.5, -r + 0.5] and buffer.terminated[i] == r % 2


def test_replay_buffer_samples_uniformly_from_the_filled_part_only():
    buffer = ReplayBuffer(capacity=100, obs_dim=2)
    _add(buffer, 0, 10)
    obs, actions, rewards, next_obs, terminated = buffer.sample(5000, np.random.default_rng(0))
    assert obs.shape == (5000, 2) and actions.dtype == np.int64 and rewards.dtype == np.float32
    assert set(rewards.tolist()) == set(range(10))  # never an empty slot
    counts = np.bincount(rewards.astype(int))
    assert counts.min() > 400 and counts.max() < 600  # uniform: about 500 each
    assert np.array_equal(obs[:, 0], rewards) and np.array_equal(actions, rewards.astype(int) % 3)


def test_replay_buffer_state_round_trips_through_tensors():
    buffer = ReplayBuffer(capacity=8, obs_dim=2)
    _add(buffer, 0, 11)
    state = buffer.state_dict()
    assert all(isinstance(state[k], torch.Tensor) for k in ("obs", "actions", "rewards", "next_obs", "terminated"))
    restored = ReplayBuffer(capacity=8, obs_dim=2)
    restored.load_state_dict(state)
    assert (restored.size, restored.position) == (buffer.size, buffer.position)
    assert np.array_equal(restored.obs, buffer.obs) and np.array_equal(restored.rewards, buffer.rewards)


def test_terminated_stops_bootstrapping_but_truncated_does_not():
    rewards = torch.tensor([1.0, 1.0])
    terminated = torch.tensor([1.0, 0.0])  # the second transition was truncated by the time limit
    next_q = torch.tensor([[10.0, 20.0], [10.0, 20.0]])
    targets = td_targets(rewards, terminated, next_q, gamma=0.9)
    assert targets.tolist() == pytest.approx([1.0, 1.0 + 0.9 * 20.0])


def test_double_dqn_values_the_online_networks_choice_with_the_target_network():
    rewards, terminated = torch.tensor([0.0]), torch.tensor([0.0])
    next_q_target = torch.tensor([[5.0, 100.0]])
    next_q_online = torch.tensor([[3.0, 1.0]])  # online prefers action 0
    assert td_targets(rewards, terminated, next_q_target, 0.5, next_q_online).item() == pytest.approx(2.5)
    assert td_targets(rewards, terminated, next_q_target, 0.5).item() == pytest.approx(50.0)


def test_real_next_obs_uses_the_final_observation_of_finished_episodes():
    next_obs = np.array([[1.0], [2.0]])  # env 1 was auto-reset: 2.0 is the new episode's first observation
    info = {"final_obs": np.array([None, np.array([9.0])], dtype=object)}
    fixed = real_next_obs(next_obs, np.array([False, True]), info)
    assert fixed.tolist() == [[1.0], [9.0]] and next_obs.tolist() == [[1.0], [2.0]]


def test_epsilon_schedules():
    linear = DQNConfig(epsilon_start=1.0, epsilon_end=0.1, exploration_steps=100)
    assert [epsilon_at(s, linear) for s in (0, 50, 100, 1000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    exponential = DQNConfig(exploration="exponential", epsilon_start=1.0, epsilon_end=0.1, exploration_steps=100)
    assert epsilon_at(0, exponential) == pytest.approx(1.0)
    assert epsilon_at(100, exponential) == pytest.approx(0.1 + 0.9 / np.e)
    assert epsilon_at(10_000, exponential) == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize("fused", [True, False])
def test_adam_matches_torch_optim_adam(fused):
    from mltoolkit.rl.adam import Adam

    torch.manual_seed(0)
    ours = [torch.randn(5, 3), torch.randn(3)]
    theirs = [p.clone().requires_grad_(True) for p in ours]
    ours = [p.requires_grad_(True) for p in ours]
    mine, reference = Adam(ours, lr=0.01), torch.optim.Adam(theirs, lr=0.01)
    mine.fused = mine.fused and fused
    for _ in range(5):
        grads = [torch.randn_like(p) for p in ours]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        mine.step()
        reference.step()
    for p, q in zip(ours, theirs):
        assert torch.allclose(p, q, atol=1e-6)
    restored = Adam([p.detach().clone() for p in ours], lr=0.01)
    restored.load_state_dict(mine.state_dict())
    assert float(restored.steps[0]) == 5 and torch.equal(restored.exp_avg[0], mine.exp_avg[0])
