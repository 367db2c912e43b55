"""DQN hyperparameters: built-in defaults < the environment's preset < ``--config`` file < typed flags."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from mltoolkit.core.errors import DataError

PRESETS_FILE = Path(__file__).with_name("presets.yaml")


@dataclass
class DQNConfig:
    """Everything a DQN run needs; ``config.json`` holds it whole, so a run can be repeated from it."""

    env: str = "CartPole-v1"
    preset: str | None = None  # the preset applied (None: built-in defaults only)
    total_steps: int = 100_000  # environment steps (summed over vector environments)
    num_envs: int = 1
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 1e-3
    batch_size: int = 64
    buffer_size: int = 50_000
    learning_starts: int = 1_000
    gamma: float = 0.99
    train_freq: int = 4  # environment steps between training rounds
    gradient_steps: int = 1  # updates per training round
    target_update: Literal["hard", "soft"] = "hard"
    target_update_interval: int = 500  # environment steps between hard copies (hard)
    tau: float = 0.005  # soft update: target <- tau * online + (1 - tau) * target, every training round
    double_dqn: bool = True
    max_grad_norm: float = 10.0
    exploration: Literal["linear", "exponential"] = "linear"
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_steps: int = 10_000  # linear: steps to reach epsilon_end; exponential: decay time constant
    eval_every: int = 2_500
    eval_episodes: int = 10
    confirm_episodes: int = 100  # a passing evaluation is re-checked on this many fresh episodes before stopping
    target_return: float | None = None  # None: the environment's reward threshold (if it has one)
    log_every: int = 1_000
    seed: int = 0
    device: str = "auto"
    threads: int = 1


@cache
def load_presets() -> dict[str, dict[str, Any]]:
    import yaml

    return yaml.safe_load(PRESETS_FILE.read_text(encoding="utf-8"))


def preset_for(env_id: str, name: str | None) -> tuple[str | None, dict[str, Any]]:
    """The preset to apply: ``name`` if given (``none`` for no preset), else the env's own if it has one."""
    presets = load_presets()
    if name is not None and name.lower() == "none":
        return None, {}
    if name is None:
        return (env_id, dict(presets[env_id])) if env_id in presets else (None, {})
    if name not in presets:
        raise DataError(f"unknown preset {name!r}; built-in presets: {', '.join(presets)} (or none)")
    return name, dict(presets[name])


def resolve_config(
    flags: dict[str, Any],
    config_file: str | Path | None = None,
    preset: str | None = None,
    resume: str | None = None,
    runs_dir: str | Path = "runs",
) -> DQNConfig:
    """Merge the layers: defaults < preset (or the resumed run's config.json) < ``--config`` file < typed flags."""
    from mltoolkit.core.config import build_config, load_config_file
    from mltoolkit.core.runs import Run, resolve_run_dir

    file_layer = load_config_file(config_file) if config_file is not None else {}
    if resume is not None:
        base = Run(resolve_run_dir(resume, runs_dir, "rl")).read_config()
        return build_config(DQNConfig, base, file_layer, flags)
    env_id = flags.get("env") or file_layer.get("env") or DQNConfig.env
    name, values = preset_for(env_id, preset if preset is not None else file_layer.pop("preset", None))
    return build_config(DQNConfig, values, {"preset": name}, file_layer, flags)
