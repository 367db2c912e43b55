"""How much memory a DQN run takes, checked against what the machine has before anything is allocated.

The replay memory and the networks are allocated whole when training starts, so a ``--buffer-size``
or ``--hidden`` too big for the machine would end in an allocation error, or the kernel's OOM killer,
after the run directory exists. Refused up front instead (exit 3), naming the largest value that fits.
A frame memory (``frames.FrameReplay``, one uint8 frame per transition) is checked the same way: it is
memory-mapped, but sampling reads all of it, so a full one needs its size in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from mltoolkit.core.device import check_memory
from mltoolkit.rl.config import DQNConfig
from mltoolkit.rl.frames import check_frame_replay_fits
from mltoolkit.rl.networks import NetworkKind, parameter_count
from mltoolkit.rl.replay import ReplayBuffer

PARAMETER_COPIES = 5  # online and target networks, the gradient, Adam's two moments
REPLAY_COPIES = 2  # the memory, and the copy of its filled part that last.pt is written from
FLOAT_BYTES = 4
RESERVED = 512 * 2**20  # torch, gymnasium and the rest of the process


def network_bytes(kind: NetworkKind, obs_shape: Sequence[int], n_actions: int, hidden: Sequence[int]) -> int:
    return PARAMETER_COPIES * FLOAT_BYTES * parameter_count(kind, obs_shape, n_actions, hidden)


def replay_bytes(capacity: int, obs_dim: int) -> int:
    return REPLAY_COPIES * capacity * ReplayBuffer.bytes_per_transition(obs_dim)


def check_fits_memory(config: DQNConfig, obs_shape: tuple[int, ...], n_actions: int) -> None:
    """Refuse a replay memory and networks that together exceed the available memory (exit 3). A frame memory is
    memory-mapped, but a full one is read all over by sampling, so it is counted as memory too."""
    network = network_bytes(config.network, obs_shape, n_actions, config.hidden)
    if len(obs_shape) > 1:
        check_frame_replay_fits(config.buffer_size, obs_shape, RESERVED + network)
        return
    obs_dim = obs_shape[0]
    replay = replay_bytes(config.buffer_size, obs_dim)
    check_memory(
        RESERVED + network + replay,
        f"--buffer-size {config.buffer_size} with --hidden {_sizes(config.hidden)} (replay memory "
        f"{replay / 2**30:.1f} GiB, networks and optimizer {network / 2**30:.1f} GiB, the process 0.5 GiB)",
        lambda available: _largest(config, obs_dim, n_actions, replay, network, available - RESERVED),
    )


def _largest(config: DQNConfig, obs_dim: int, n_actions: int, replay: int, network: int, budget: int) -> str:
    """What fits in ``budget`` bytes: a smaller value of the option that takes the most, the other kept."""
    per_transition = replay_bytes(1, obs_dim)
    buffer_fits = (budget - network) // per_transition
    width_fits = _widest(obs_dim, n_actions, len(config.hidden), budget - replay)
    if replay >= network and buffer_fits >= 1:
        return f"--buffer-size {buffer_fits}"
    if width_fits >= 1:
        return f"--hidden {_sizes([width_fits] * len(config.hidden))}"
    width = _widest(obs_dim, n_actions, len(config.hidden), budget // 2)  # neither fits alone: halve the budget
    return f"--buffer-size {budget // 2 // per_transition} with --hidden {_sizes([width] * len(config.hidden))}"


def _widest(obs_dim: int, n_actions: int, layers: int, budget: int) -> int:
    """The largest width of ``layers`` equal hidden layers whose networks fit in ``budget`` bytes (0: none)."""
    if layers == 0:
        return 0
    low, high = 0, 1
    while network_bytes("mlp", (obs_dim,), n_actions, (high,) * layers) <= budget:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        fits = network_bytes("mlp", (obs_dim,), n_actions, (middle,) * layers) <= budget
        low, high = (middle, high) if fits else (low, middle)
    return low


def _sizes(sizes: Sequence[int]) -> str:
    return ",".join(map(str, sizes))
