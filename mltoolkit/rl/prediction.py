"""Greedy actions for observations streamed as JSON lines: a trained policy as a pipeline component."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.errors import DataError
from mltoolkit.rl.policy import Policy, load_policy


def parse_observation(line: str, where: str, obs_dim: int, env_id: str) -> np.ndarray:
    """One JSON array of ``obs_dim`` finite numbers, or a ``DataError`` naming the line."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        raise DataError(f"{where}: not JSON; expected an array of {obs_dim} numbers") from None
    return check_observation(value, where, obs_dim, env_id)


def check_observation(value: Any, where: str, obs_dim: int, env_id: str) -> np.ndarray:
    """A list of ``obs_dim`` finite numbers (or ``{"obs": [...]}``) as float32, else a ``DataError``."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict) and "obs" in value:
        value = value["obs"]
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise DataError(f"{where}: expected a JSON array of {obs_dim} numbers")
    if len(value) != obs_dim:
        raise DataError(f"{where}: observation has {len(value)} numbers, {env_id} observations have {obs_dim}")
    if not all(math.isfinite(v) for v in value):
        raise DataError(f"{where}: observation holds NaN or infinity")
    return np.asarray(value, dtype=np.float32)


def predict_lines(
    policy: Policy, lines: Iterable[tuple[int, str]], source: str, q_values: bool = False
) -> Iterator[dict[str, Any]]:
    """One record per observation line, in order, computed as each line arrives (so it streams)."""
    try:
        for number, line in lines:
            yield _record(
                policy, parse_observation(line, f"{source} line {number}", policy.obs_dim, policy.env_id), q_values
            )
    except UnicodeDecodeError:
        raise DataError(f"{source}: not UTF-8 text; expected JSON lines of {policy.obs_dim} numbers each") from None


def _record(policy: Policy, obs: np.ndarray, q_values: bool) -> dict[str, Any]:
    """``{"action": a}``, plus ``q_values`` when asked."""
    q = policy.q_values(obs[None])[0]
    record: dict[str, Any] = {"action": int(q.argmax())}
    if q_values:
        record["q_values"] = [round(float(v), 6) for v in q]
    return record


def predict(
    run: str | Path, observations: Iterable[Any], *, q_values: bool = False, runs_dir: str | Path = "runs"
) -> list[dict[str, Any]]:
    """Python API: greedy actions for observation vectors (lists or arrays)."""
    policy = load_policy(run, runs_dir)
    return [
        _record(policy, check_observation(obs, f"observation {i}", policy.obs_dim, policy.env_id), q_values)
        for i, obs in enumerate(observations, start=1)
    ]
