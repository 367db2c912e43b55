"""How much memory a DQN run takes, checked against what the machine has before anything is allocated.

The replay memory and the networks are allocated whole when training starts, so a ``--buffer-size``
or ``--hidden`` too big for the machine would end in an allocation error, or the kernel's OOM killer,
after the run directory exists. Refused up front instead (exit 3), naming the largest value that fits.
"""

from __future__ import annotations

from collections.abc import Sequence

from mltoolkit.core.errors import DataError
from mltoolkit.rl.config import DQNConfig
from mltoolkit.rl.dqn import parameter_count
from mltoolkit.rl.replay import ReplayBuffer

PARAMETER_COPIES = 5  # online and target networks, the gradient, Adam's two moments
REPLAY_COPIES = 2  # the memory, and the copy of its filled part that last.pt is written from
FLOAT_BYTES = 4
RESERVED = 512 * 2**20  # torch, gymnasium and the rest of the process


def available_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo: what can be allocated without swapping; None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError):
        pass
    return None


def network_bytes(obs_dim: int, n_actions: int, hidden: Sequence[int]) -> int:
    return PARAMETER_COPIES * FLOAT_BYTES * parameter_count(obs_dim, n_actions, hidden)


def replay_bytes(capacity: int, obs_dim: int) -> int:
    return REPLAY_COPIES * capacity * ReplayBuffer.bytes_per_transition(obs_dim)


def check_memory(config: DQNConfig, obs_dim: int, n_actions: int, available: int | None = None) -> None:
    """Refuse a replay memory and networks that together exceed the available memory (exit 3)."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    available -= RESERVED
    network = network_bytes(obs_dim, n_actions, config.hidden)
    replay = replay_bytes(config.buffer_size, obs_dim)
    if network + replay <= available:
        return
    layers = len(config.hidden)
    buffer_fits = (available - network) // replay_bytes(1, obs_dim)
    width_fits = _widest(obs_dim, n_actions, layers, available - replay)
    if replay >= network and buffer_fits >= 1:
        advice = f"at most --buffer-size {buffer_fits} fits"
    elif width_fits >= 1:
        advice = f"at most --hidden {','.join([str(width_fits)] * layers)} fits"
    else:
        advice = "lower both"
    raise DataError(
        f"--buffer-size {config.buffer_size} and --hidden {','.join(map(str, config.hidden))} need "
        f"{_gib(network + replay)} of memory ({_gib(replay)} replay memory, {_gib(network)} networks and "
        f"optimizer) but {_gib(available)} is available besides the process itself; {advice}"
    )


def _widest(obs_dim: int, n_actions: int, layers: int, budget: int) -> int:
    """The largest width of ``layers`` equal hidden layers whose networks fit in ``budget`` bytes (0: none)."""
    if layers == 0:
        return 0
    low, high = 0, 1
    while network_bytes(obs_dim, n_actions, (high,) * layers) <= budget:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if network_bytes(obs_dim, n_actions, (middle,) * layers) <= budget else (low, middle)
    return low


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"
