"""Replay memory for stacked image observations: every frame stored once, as uint8, in memory-mapped files.

A stacked Atari observation is 4 frames of 84x84, and the next observation shares 3 of them. Storing
``(obs, next_obs)`` per transition, as ``replay.ReplayBuffer`` does for vectors, keeps each frame 8
times (~56 GB for 1M transitions). Here every vector environment writes its own stream of frames, one
slot per step, and a transition is a slot: its newest frame, action, reward and ``terminated``. The
stacks are rebuilt from indices when a batch is sampled: ``obs`` is slots ``j-3..j``, ``next_obs`` is
``j-2..j+1`` of the same stream (~7.1 GB for 1M transitions).

Episode boundaries are exact. An observation that does not continue its stream's last one starts an
episode: all of its frames are written (the frame stack's padding included), so a stack never reaches
into the previous episode and the first observations come back exactly as the env produced them. The
test is frame equality, which is exact by construction: an observation equal to the last one rebuilds
the same stack either way. The padding slots (stack - 1 per episode) and an episode's last frame hold
no transition of their own; a slot is sampled only while it is ``valid``: its transition is complete
and the slots its stacks read were not overwritten since (overwriting a slot clears those flags).

Persistence: the arrays are ``.npy`` files in a directory of the run, mapped into memory, so a
checkpoint holds a few numbers instead of gigabytes and a resumed run reopens the files (``open``).
Within a slot the flags are written last: a transition is valid only once every field of it is.
After ``kill -9`` (or the OOM killer) the kernel still writes the killed process's pages to the files,
so the memory resumes as it was at the kill, which may be more than ``last.pt`` knew of (the steps
after the last checkpoint stay in it as experience); a transition cut mid-write is not valid and is
never sampled. An operating-system crash or power loss can leave pages of different ages: delete the
directory to start the memory afresh.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.device import check_memory
from mltoolkit.core.errors import DataError

FIELDS = {"actions": np.int64, "rewards": np.float32, "terminated": np.uint8, "valid": np.bool_}


class FrameReplay:
    """Ring memory of ``num_envs`` frame streams, ``capacity // num_envs`` slots each, in ``directory``.

    ``obs_shape`` is one stacked observation, ``(stack, *frame)``, e.g. ``(4, 84, 84)``. The same
    ``add`` / ``sample`` / ``state_dict`` interface as ``ReplayBuffer``; ``obs`` comes back as uint8
    (the network scales it), ``terminated`` as float32.
    """

    def __init__(
        self, directory: str | Path, capacity: int, obs_shape: Sequence[int], num_envs: int = 1, *, mode: str = "w+"
    ) -> None:
        self.directory = Path(directory)
        self.obs_shape = tuple(int(n) for n in obs_shape)
        self.stack, self.num_envs = self.obs_shape[0], num_envs
        self.stream = capacity // num_envs  # slots per environment
        if self.stream < self.stack + 1:
            raise DataError(
                f"--buffer-size {capacity} is too small for {num_envs} environments with stacks of {self.stack} "
                f"frames: at least {(self.stack + 1) * num_envs}"
            )
        self.capacity = self.stream * num_envs
        if mode == "w+":
            self.directory.mkdir(parents=True, exist_ok=True)
            _check_disk(self.directory, frame_replay_bytes(self.capacity, self.obs_shape, num_envs))
        self.frames = self._array("frames", np.uint8, (self.capacity, *self.obs_shape[1:]), mode)
        for name, dtype in FIELDS.items():
            setattr(self, name, self._array(name, dtype, (self.capacity,), mode))
        self.cursor = self._array("cursor", np.int64, (num_envs,), mode)  # slots ever written, per stream
        self.size = int(np.count_nonzero(self.valid))
        self.last_obs = np.zeros((num_envs, *self.obs_shape), dtype=np.uint8)
        self.continues = np.zeros(num_envs, dtype=bool)  # may the next obs continue the stream? (not after open)

    @classmethod
    def open(cls, directory: str | Path, capacity: int, obs_shape: Sequence[int], num_envs: int = 1) -> FrameReplay:
        """Reopen the memory of an interrupted run; its environments start new episodes."""
        try:
            return cls(directory, capacity, obs_shape, num_envs, mode="r+")
        except (OSError, ValueError) as exc:
            raise DataError(f"{directory}: no replay memory for these settings to resume ({exc})") from None

    def _array(self, name: str, dtype: Any, shape: tuple[int, ...], mode: str) -> np.memmap:
        array = np.lib.format.open_memmap(self.directory / f"{name}.npy", mode=mode, dtype=dtype, shape=shape)
        if array.shape != shape or array.dtype != dtype:
            raise ValueError(f"{name}.npy holds {array.dtype} {array.shape}, not {np.dtype(dtype)} {shape}")
        return array

    @staticmethod
    def bytes_per_transition(obs_shape: Sequence[int]) -> int:
        """Memory one slot takes: one frame and its transition's fields."""
        return int(np.prod(obs_shape[1:])) + sum(np.dtype(dtype).itemsize for dtype in FIELDS.values())

    def __len__(self) -> int:
        return self.size

    def add(
        self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray, terminated: np.ndarray
    ) -> None:
        """Store one transition per vector environment (environment ``i`` writes stream ``i``)."""
        for i in range(len(actions)):
            if not (self.continues[i] and np.array_equal(obs[i], self.last_obs[i])):
                for frame in obs[i]:  # a new episode: its first observation, padding included
                    self._append(i, frame)
            slot = self._slot(i, self.cursor[i] - 1)
            self.actions[slot], self.rewards[slot], self.terminated[slot] = actions[i], rewards[i], terminated[i]
            self._append(i, next_obs[i][-1])
            self.valid[slot] = True
            self.size += 1
        self.last_obs[:] = next_obs
        self.continues[:] = True

    def _slot(self, stream: int, count: int | np.ndarray) -> Any:
        return stream * self.stream + count % self.stream

    def _append(self, stream: int, frame: np.ndarray) -> None:
        """Write the stream's next frame over its oldest, clearing the transitions that read the old one."""
        count = int(self.cursor[stream])
        readers = self._slot(stream, count + np.arange(self.stack))  # the old slot and those stacked on it
        self.size -= int(np.count_nonzero(self.valid[readers]))
        self.valid[readers] = False
        self.frames[readers[0]] = frame
        self.cursor[stream] = count + 1

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """A uniformly random batch of valid transitions: obs, actions, rewards, next_obs, terminated."""
        if self.size == 0:
            raise ValueError("the replay memory holds no complete transition yet")
        filled = np.minimum(self.cursor, self.stream)  # a stream fills its slots from the first
        ends = np.cumsum(filled)
        index = np.empty(0, dtype=np.int64)
        while len(index) < batch_size:  # uniform over written slots, the invalid few drawn again
            draw = rng.integers(0, ends[-1], size=2 * batch_size)
            streams = np.searchsorted(ends, draw, side="right")
            slots = streams * self.stream + draw - (ends - filled)[streams]
            index = np.concatenate([index, slots[self.valid[slots]]])
        index = index[:batch_size]
        offsets = np.arange(1 - self.stack, 2)  # the stack's frames and the successor's newest one
        start = index - index % self.stream
        frames = self.frames[start[:, None] + (index[:, None] + offsets) % self.stream]
        return (
            frames[:, :-1],
            self.actions[index],
            self.rewards[index],
            frames[:, 1:],
            self.terminated[index].astype(np.float32),
        )

    def flush(self) -> None:
        """Write every mapped page to its file (done before a checkpoint records the memory)."""
        for name in ("frames", "cursor", *FIELDS):
            getattr(self, name).flush()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to find the memory again: the arrays stay in their files."""
        self.flush()
        return {
            "directory": str(self.directory),
            "capacity": self.capacity,
            "obs_shape": list(self.obs_shape),
            "num_envs": self.num_envs,
            "size": self.size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Check that the checkpoint's memory is this one; its contents are already in the files."""
        expected = (int(state["capacity"]), tuple(state["obs_shape"]), int(state["num_envs"]))
        if expected != (self.capacity, self.obs_shape, self.num_envs):
            raise ValueError(
                f"the checkpoint's replay memory holds {expected[0]} frames of {expected[1]} for {expected[2]} "
                f"environments, not {self.capacity} of {self.obs_shape} for {self.num_envs}"
            )


def frame_replay_bytes(capacity: int, obs_shape: Sequence[int], num_envs: int = 1) -> int:
    """Bytes ``FrameReplay(capacity, obs_shape, num_envs)`` will hold once full, computed without allocating."""
    slots = capacity // num_envs * num_envs
    return slots * FrameReplay.bytes_per_transition(obs_shape) + num_envs * np.dtype(np.int64).itemsize


def check_frame_replay_fits(capacity: int, obs_shape: Sequence[int], other_bytes: int = 0) -> None:
    """Refuse (exit 3) a capacity whose frames and ``other_bytes`` (networks, the process) exceed the memory."""
    per_slot = FrameReplay.bytes_per_transition(obs_shape)
    check_memory(
        frame_replay_bytes(capacity, obs_shape) + other_bytes,
        f"--buffer-size {capacity} of {'x'.join(map(str, obs_shape[1:]))} frames",
        lambda available: f"--buffer-size {max(0, available - other_bytes) // per_slot}",
    )


def _check_disk(directory: Path, needed: int) -> None:
    """The files are sparse and grow as the memory fills: refuse a disk that could not hold them full."""
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise DataError(
            f"the replay memory in {directory} needs {needed / 2**30:.1f} GiB of disk when full, "
            f"{free / 2**30:.1f} GiB is free"
        )
