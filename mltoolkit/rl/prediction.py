"""``load(run)``: a trained policy as the Predictor that ``mltk rl predict`` and ``mltk serve`` use.

``predict`` takes observations (lists of numbers or numpy arrays; for frames, stacked uint8 frames such as
``(4, 84, 84)``) and returns ``{"action": a}`` for each, plus every action's ``q_values`` when asked: exactly
the lines ``mltk rl predict --format jsonl`` prints. ``mltk rl predict`` also reads a ``.npy`` file holding
one observation per row, e.g. ``(N, 4, 84, 84)``.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mltoolkit.core.contract import provenance
from mltoolkit.core.device import set_threads
from mltoolkit.core.errors import DataError
from mltoolkit.core.io import STDIO, chunks, iter_lines, source_name
from mltoolkit.rl import policy as policies
from mltoolkit.techniques import ONNXRUNTIME, RL

if TYPE_CHECKING:
    from mltoolkit.export.rl import OnnxPolicy

BATCH = 1024  # observations per predict call when reading a file


def load(
    run: str | Path,
    *,
    runs_dir: str | Path = "runs",
    device: str = "auto",
    threads: int | None = None,
    backend: str = RL.backends[0],
) -> Agent:
    """The best policy of a run (a run directory, ``latest``, a name under ``runs_dir``, or a checkpoint alone).

    It answers on the CPU whatever ``device`` says: a few observations through a small MLP take less time
    than a trip to a GPU. ``threads``: torch's CPU threads (None leaves them as they are). ``backend``:
    ``torch`` (default), or ``onnxruntime`` to answer through the run's ONNX export, so the same predict
    tests the file that ships (docs/export.md).
    """
    if RL.check_backend(backend) == ONNXRUNTIME:
        from mltoolkit.export.rl import onnx_policy

        return Agent(onnx_policy(run, runs_dir, threads))
    if threads is not None:
        set_threads(threads)
    return Agent(policies.load_policy(run, runs_dir))


class Agent:
    """A trained DQN policy (the contract's Predictor): greedy actions and Q-values for observations."""

    technique = RL.name

    def __init__(self, policy: policies.Policy | OnnxPolicy) -> None:
        self.policy, self.run_dir = policy, policy.run_dir

    def predict(self, batch: Sequence[Any], *, q_values: bool = False) -> list[dict[str, Any]]:
        """``{"action": a}`` per observation, in order; ``q_values`` adds every action's Q-value (6 decimals)."""
        if isinstance(batch, (str, bytes, dict)) or not isinstance(batch, (Sequence, np.ndarray)):
            raise DataError(f"expected a list of observations, got {type(batch).__name__}")
        policy = self.policy
        observations = [check_record(o, f"record {i}", policy) for i, o in enumerate(batch)]
        if not observations:
            return []
        return [_record(q, q_values) for q in policy.q_values(np.stack(observations))]

    def metadata(self) -> dict[str, Any]:
        policy = self.policy
        shape = list(policy.obs_shape)
        frames = len(shape) > 1
        described = f"stacked frames: an array of shape {tuple(shape)} of 0-255 values" if frames else None
        return {
            **provenance(self.technique, self.run_dir),
            "env": policy.env_id,
            "observation_shape": shape,
            # a vector's length, for clients that size their requests by it
            **({} if frames else {"obs_dim": policy.obs_dim}),
            "n_actions": policy.n_actions,
            "input": described or f"an observation: an array of {policy.obs_dim} numbers",
            "output": ["action", "q_values"],
            "options": {"q_values": False},
        }


def parse_observation(line: str, where: str, policy: Any) -> np.ndarray:
    """One JSON observation (``check_record``), or a ``DataError`` naming the line."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        raise DataError(f"{where}: not JSON; expected an observation of shape {tuple(policy.obs_shape)}") from None
    return check_record(value, where, policy)


def check_record(value: Any, where: str, policy: Any) -> np.ndarray:
    """A vector observation (``check_observation``) or stacked frames (``check_frames``), as the policy takes."""
    if len(policy.obs_shape) == 1:
        return check_observation(value, where, policy.obs_dim, policy.env_id)
    return check_frames(value, where, tuple(policy.obs_shape), policy.env_id)


def check_frames(value: Any, where: str, shape: tuple[int, ...], env_id: str) -> np.ndarray:
    """Stacked frames of exactly ``shape`` (``{"obs": ...}`` too), values 0-255, as uint8; else a ``DataError``."""
    if isinstance(value, dict) and "obs" in value:
        value = value["obs"]
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: expected stacked frames of shape {shape} (a {env_id} observation)") from None
    if array.shape != shape:
        raise DataError(f"{where}: expected stacked frames of shape {shape}, got shape {array.shape}")
    if not ((array >= 0) & (array <= 255)).all():
        raise DataError(f"{where}: frame values must be 0-255 (uint8 pixels)")
    return array.astype(np.uint8)


def check_observation(value: Any, where: str, obs_dim: int, env_id: str) -> np.ndarray:
    """An array of ``obs_dim`` finite numbers (or ``{"obs": [...]}``) as float32, else a ``DataError``."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict) and "obs" in value:
        value = value["obs"]
    if not isinstance(value, list) or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise DataError(f"{where}: expected an array of {obs_dim} numbers (a {env_id} observation)")
    if len(value) != obs_dim:
        raise DataError(f"{where}: observation of length {len(value)}; {env_id} observations have length {obs_dim}")
    if not all(math.isfinite(v) for v in value):
        raise DataError(f"{where}: observation holds NaN or infinity")
    return np.asarray(value, dtype=np.float32)


def read_batches(agent: Agent, source: str | Path) -> Iterator[list[np.ndarray]]:
    """The observations of a JSON-lines file or stdin, checked (a bad one names its line), in batches for
    ``predict``: ``BATCH`` from a regular file, one at a time from stdin or a pipe, where the program feeding
    it may wait for each action before it sends the next observation."""
    policy, where = agent.policy, source_name(source)
    if str(source).endswith(".npy"):
        return _npy_batches(source, tuple(policy.obs_shape))
    observations = (parse_observation(line, f"{where} line {n}", policy) for n, line in iter_lines(source))
    size = BATCH if str(source) != STDIO and Path(source).is_file() else 1
    return chunks(observations, size)


def _npy_batches(path: str | Path, shape: tuple[int, ...]) -> Iterator[list[np.ndarray]]:
    """The rows of a ``.npy`` array of shape ``(N, *shape)`` (memory-mapped), ``BATCH`` at a time."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if array.shape[1:] != shape:
        raise DataError(f"{path}: expected an array of shape (N, {', '.join(map(str, shape))}), got {array.shape}")
    return (list(array[start : start + BATCH]) for start in range(0, len(array), BATCH))


def _record(q: np.ndarray, q_values: bool) -> dict[str, Any]:
    """``{"action": a}``, plus ``q_values`` when asked."""
    record: dict[str, Any] = {"action": int(q.argmax())}
    if q_values:
        record["q_values"] = [round(float(v), 6) for v in q]
    return record
