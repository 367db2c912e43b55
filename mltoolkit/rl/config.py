"""DQN hyperparameters: built-in defaults < the environment's preset < ``--config`` file < typed flags.

Each field is also a ``train`` option (``core.params``): its help, its range and its default live
here once, and every value is checked against its range before a run directory is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from mltoolkit.core.errors import DataError
from mltoolkit.core.params import RunOptions, check_config, param

PRESETS_FILE = Path(__file__).with_name("presets.yaml")
ATARI = "atari"  # the preset of every Atari game without its own

_HYPER = "Hyperparameters (the env's preset overrides these: mltk rl presets)"
_EVAL = "Evaluation and stopping"


def parse_hidden(text: str) -> tuple[int, ...]:
    """``--hidden 128,128`` as layer sizes (their range is the field's, checked with the rest)."""
    try:
        sizes = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        sizes = ()
    if not sizes:
        raise DataError(f"--hidden {text!r}: expected comma-separated layer sizes like 64,64")
    return sizes


@dataclass
class DQNConfig(RunOptions):
    """Everything a DQN run needs; ``config.json`` holds it whole, so a run can be repeated from it.

    A config built directly is trained as it is (``preset`` None: no preset); ``DQNConfig.for_env`` starts
    from the environment's tuned preset, as ``mltk rl train --env ID`` does.
    """

    env: str = param("CartPole-v1", "Gymnasium environment id; module:Env-v0 imports module first.", short="-e")
    preset: str | None = param(
        None,
        "Preset name, or none for the built-in defaults.",
        default_text="the --env id's preset if there is one",
    )
    pixels: bool = param(
        False, "Learn from the env's rendered screen (stacked 84x84 gray frames) instead of its observation."
    )
    total_steps: int = param(100_000, "Environment steps at most, all vector envs counted.", ge=1, panel=_HYPER)
    num_envs: int = param(1, "Environments stepped together in a gymnasium SyncVectorEnv.", ge=1, panel=_HYPER)
    hidden: tuple[int, ...] = param(
        (64, 64), "Hidden layer sizes of the Q-network, comma-separated, e.g. 256,256.", ge=1,
        parse=parse_hidden, panel=_HYPER,
    )  # fmt: skip
    network: Literal["auto", "mlp", "cnn"] = param(
        "auto", "Q-network: auto (the Nature CNN for frames, the MLP for vectors), mlp or cnn.", panel=_HYPER
    )
    learning_rate: float = param(1e-3, "Adam learning rate.", gt=0, panel=_HYPER)
    batch_size: int = param(64, "Replay transitions per gradient step.", ge=1, panel=_HYPER)
    buffer_size: int = param(50_000, "Replay memory capacity (transitions).", ge=1, panel=_HYPER)
    learning_starts: int = param(
        1_000, "Steps of pure collection before learning (fewer than --total-steps).", ge=0, panel=_HYPER
    )
    gamma: float = param(0.99, "Discount factor of future rewards.", ge=0, le=1, panel=_HYPER)
    train_freq: int = param(4, "Environment steps between training rounds.", ge=1, panel=_HYPER)
    gradient_steps: int = param(1, "Gradient steps per training round.", ge=1, panel=_HYPER)
    target_update: Literal["hard", "soft"] = param(
        "hard", "hard (copy every --target-update-interval steps) or soft (Polyak, --tau).", panel=_HYPER
    )
    target_update_interval: int = param(500, "Environment steps between hard target copies.", ge=1, panel=_HYPER)
    tau: float = param(
        0.005, "Soft update rate: target <- tau * online + (1 - tau) * target, every training round.",
        gt=0, le=1, panel=_HYPER,
    )  # fmt: skip
    double_dqn: bool = param(True, "Double DQN: the online net picks a', the target values it.", panel=_HYPER)
    max_grad_norm: float = param(10.0, "Gradient norm clipping; inf: none.", gt=0, finite=False, panel=_HYPER)
    exploration: Literal["linear", "exponential"] = param("linear", "Epsilon schedule.", panel=_HYPER)
    epsilon_start: float = param(1.0, "Initial exploration rate.", ge=0, le=1, panel=_HYPER)
    epsilon_end: float = param(0.05, "Final exploration rate.", ge=0, le=1, panel=_HYPER)
    exploration_steps: int = param(
        10_000, "linear: steps to reach --epsilon-end; exponential: time constant.", ge=0, panel=_HYPER
    )
    eval_every: int = param(2_500, "Steps between greedy evaluations.", ge=1, panel=_EVAL)
    eval_episodes: int = param(10, "Episodes per evaluation.", ge=1, panel=_EVAL)
    confirm_episodes: int = param(
        100, "Fresh episodes that must also reach the target before stopping (0: none).", ge=0, panel=_EVAL
    )
    target_return: float | None = param(
        None, "Stop once evaluation holds this mean return; inf never stops early.",
        finite=False, default_text="the env's reward threshold", panel=_EVAL,
    )  # fmt: skip
    log_every: int = param(1_000, "Steps between training lines in metrics.jsonl.", ge=1, panel=_EVAL)
    seed: int = param(0, "Seed for the environments, numpy and torch.", ge=0, lt=2**32)
    device: str = param("auto", "auto, cpu, cuda, cuda:N or mps (small MLPs are usually fastest on CPU).")
    threads: int = param(1, "CPU threads for torch (1 is the fastest for DQN's small networks; 0: every core).", ge=0)

    @classmethod
    def for_env(cls, env: str = "CartPole-v1", *, preset: str | None = None, **fields: Any) -> DQNConfig:
        """What ``mltk rl train --env ENV`` trains: the env's preset (or ``preset``; ``"none"``: none) under
        ``fields``, every value checked."""
        return dqn_config({"env": env, "preset": preset, **fields})


def check_dqn_config(config: DQNConfig) -> None:
    """Every value in its field's range, and what the ranges cannot say alone; run before a run directory is made."""
    check_config(config)
    if config.learning_starts >= config.total_steps:
        raise DataError(
            f"--learning-starts {config.learning_starts} must be below --total-steps {config.total_steps}: "
            "the network would never be trained"
        )


@cache
def load_presets() -> dict[str, dict[str, Any]]:
    import yaml

    return yaml.safe_load(PRESETS_FILE.read_text(encoding="utf-8"))


def preset_for(env_id: str, name: str | None) -> tuple[str | None, dict[str, Any]]:
    """The preset to apply: ``name`` if given (``none`` for no preset), else the env's own if it has one, else
    ``atari`` for any other Atari game."""
    presets = load_presets()
    if name is not None and name.lower() == "none":
        return None, {}
    if name is None:
        if env_id in presets:
            return env_id, dict(presets[env_id])
        from mltoolkit.rl.atari import is_ale

        return (ATARI, dict(presets[ATARI])) if is_ale(env_id) else (None, {})
    if name not in presets:
        raise DataError(f"unknown preset {name!r}; built-in presets: {', '.join(presets)} (or none)")
    return name, dict(presets[name])


def dqn_config(
    flags: dict[str, Any], config_file: str | Path | None = None, resumed: dict[str, Any] | None = None
) -> DQNConfig:
    """The run's config: a new run layers its env's preset under the ``--config`` file and the flags; a
    resumed run layers its own config.json there instead (its preset was applied when it started)."""
    from mltoolkit.core.config import load_config_file, resolve_config

    if resumed is not None:
        resumed = {key: value for key, value in resumed.items() if key != "protocol"}  # config.json's record of it
        config = resolve_config(DQNConfig, {**flags, "preset": None}, config_file=config_file, resumed=resumed)
    else:
        file_layer = load_config_file(config_file) if config_file is not None else {}
        env_id = flags.get("env") or file_layer.get("env") or DQNConfig.env
        name, values = preset_for(env_id, flags.get("preset") or file_layer.get("preset"))
        config = resolve_config(DQNConfig, flags, config_file=config_file, base={**values, "preset": name})
        config.preset = name  # "none" typed or in the file means no preset was applied
    check_dqn_config(config)
    return config
