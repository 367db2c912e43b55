"""The DQN training loop: act, remember, learn, evaluate, checkpoint. A plain loop, top to bottom.

Every ``eval_every`` steps the greedy policy plays ``eval_episodes`` episodes on separate
environments; ``best.pt`` keeps the best of them. When the mean reaches the target return it is
re-checked on ``confirm_episodes`` fresh episodes, and training stops only if it holds there too,
so the saved policy really solves the task rather than having been lucky on a few episodes.
``last.pt`` holds everything needed to continue (networks, optimizer, replay memory, RNG states).

Frames (Atari, image envs, ``--pixels``) take the same loop: their replay memory is a ``FrameReplay``
in ``<run>/replay/`` (last.pt records where it is; ``--resume`` reopens it), and what the loss sees is
``LossSignals``' (for Atari: clipped rewards, a lost life as an episode end), while the returns that
are logged and evaluated are raw scores of full games.
"""

from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mltoolkit.core.checkpoint import load_checkpoint, save_checkpoint
from mltoolkit.core.config import config_dict
from mltoolkit.core.console import info, progress, warn
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.device import resolve_device, seed_everything, set_threads
from mltoolkit.core.errors import DataError
from mltoolkit.core.plots import plot_curves
from mltoolkit.core.runs import Run, resolve_resume, run_name, start_run
from mltoolkit.rl.atari import LossSignals, ale_protocol, is_ale
from mltoolkit.rl.config import DQNConfig, check_dqn_config
from mltoolkit.rl.dqn import DQN, epsilon_at
from mltoolkit.rl.envs import check_spaces, env_spec, make_vector_env, play_episodes, real_next_obs
from mltoolkit.rl.footprint import check_fits_memory
from mltoolkit.rl.frames import FrameReplay
from mltoolkit.rl.policy import saved_obs_shape
from mltoolkit.rl.replay import ReplayBuffer
from mltoolkit.techniques import RL

REPLAY_DIR = "replay"  # a frame replay memory's files, in the run directory


def _crossed(before: int, after: int, every: int) -> bool:
    """Did the step counter pass a multiple of ``every`` (vector envs advance it by ``num_envs``)?"""
    return after // every > before // every


def eval_seed(seed: int, evaluation: int, confirm: bool = False) -> int:
    """Reset seeds of evaluation episodes: fresh for every evaluation, disjoint from the confirmation's."""
    return seed + 10_000 * (evaluation + 1) + (5_000 if confirm else 0)


class Counters:
    """Where training stands: what a resumed run continues from (plain numbers, saved in last.pt)."""

    def __init__(self) -> None:
        self.step = 0
        self.episodes = 0
        self.evaluations = 0
        self.best_score = -float("inf")
        self.best_step = -1
        self.solved = False
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.recent_lengths: deque[int] = deque(maxlen=100)

    def count_episodes(self, done: np.ndarray, returns: np.ndarray, lengths: np.ndarray) -> None:
        """Record the episodes that just ended and zero their running return and length."""
        for i in np.flatnonzero(done):
            self.recent_returns.append(float(returns[i]))
            self.recent_lengths.append(int(lengths[i]))
            self.episodes += 1
            returns[i], lengths[i] = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "episodes": self.episodes,
            "evaluations": self.evaluations,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "solved": self.solved,
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("step", "episodes", "evaluations", "best_score", "best_step", "solved"):
            setattr(self, key, state[key])
        self.recent_returns.extend(state["recent_returns"])
        self.recent_lengths.extend(state["recent_lengths"])


def train(
    config: DQNConfig, *, runs_dir: str | Path = "runs", name: str | None = None, resume: str | None = None
) -> TrainResult:
    """Train a DQN agent on ``config.env`` as configured (``DQNConfig.for_env`` applies the env's preset);
    ``resume`` continues an interrupted run (``_restore``). The summary is also the run's summary.json."""
    started = time.perf_counter()
    check_dqn_config(config)
    set_threads(config.threads)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    spec, envs, obs_shape, n_actions = _environments(config)
    target_return = config.target_return if config.target_return is not None else spec.reward_threshold
    agent = DQN(obs_shape, n_actions, config, device)
    resume_dir = resolve_resume(resume, runs_dir, RL.name) if resume is not None else None
    buffer = _replay_memory(config, obs_shape, resume_dir)
    rng = np.random.default_rng(config.seed)
    envs.action_space.seed(config.seed)
    state = Counters()
    learning_starts = config.learning_starts
    if resume_dir is not None:  # restored before the run is reopened: a checkpoint that does not fit changes nothing
        learning_starts = _restore(resume_dir, config, agent, buffer, rng, state, obs_shape, n_actions)
    run, resumed = _start_run(config, spec.id, str(device), runs_dir, name, resume)
    if buffer is None:
        buffer = FrameReplay(run.path / REPLAY_DIR, config.buffer_size, obs_shape, config.num_envs)
    if resumed:
        run.keep_metrics_until("step", state.step)
        info(f"resuming {run.path} at step {state.step} ({len(buffer)} transitions in memory)")
    signals = LossSignals(clip_rewards=is_ale(spec.id))
    obs, reset_info = envs.reset(seed=config.seed + state.step)  # env state is not saved: a resumed run starts anew
    signals.reset(reset_info)
    episode_return = np.zeros(config.num_envs)
    episode_length = np.zeros(config.num_envs, dtype=np.int64)
    loss = q_mean = None

    def save_last() -> None:
        _save(run, "last.pt", config, agent, state, obs_shape, n_actions, buffer=buffer, rng=rng)

    try:
        with progress(config.total_steps, f"DQN {spec.id}") as bar:
            bar.update(state.step)
            tick = time.perf_counter()
            while state.step < config.total_steps and not state.solved:
                epsilon = epsilon_at(state.step, config)
                actions = _act(agent, obs, epsilon, rng)
                next_obs, rewards, terminated, truncated, step_info = envs.step(actions)
                done = terminated | truncated
                # Remember: the true last observation of an episode, and whether it *terminated* (for the loss).
                loss_rewards, loss_terminated = signals(rewards, terminated, truncated, step_info)
                buffer.add(obs, actions, loss_rewards, real_next_obs(next_obs, done, step_info), loss_terminated)
                obs = next_obs
                episode_return += rewards  # raw: the score that is reported
                episode_length += 1
                state.count_episodes(done, episode_return, episode_length)
                before, state.step = state.step, state.step + config.num_envs

                # Learn: a few gradient steps on random replay batches, then move the target network.
                if state.step >= learning_starts and _crossed(before, state.step, config.train_freq):
                    for _ in range(config.gradient_steps):
                        loss, q_mean = agent.update(buffer.sample(config.batch_size, rng))
                    if config.target_update == "soft":
                        agent.soft_update()
                if config.target_update == "hard" and _crossed(before, state.step, config.target_update_interval):
                    agent.hard_update()

                if _crossed(before, state.step, config.log_every):
                    tick = _log_training(run, bar, config, state, epsilon, loss, q_mean, tick)
                if _crossed(before, state.step, config.eval_every) or state.step >= config.total_steps:
                    _evaluate(run, config, agent, state, target_return, obs_shape, n_actions)
                    save_last()
    except KeyboardInterrupt:
        save_last()
        _finish(run, config, state, "interrupted", target_return, time.perf_counter() - started)
        raise
    finally:
        envs.close()
    status = "solved" if state.solved else "completed"
    return _finish(run, config, state, status, target_return, time.perf_counter() - started)


def _replay_memory(
    config: DQNConfig, obs_shape: tuple[int, ...], resume_dir: Path | None
) -> ReplayBuffer | FrameReplay | None:
    """Vectors: a ``ReplayBuffer``, saved whole in last.pt. Frames: a ``FrameReplay`` in ``<run>/replay/``, too big
    to pickle, reopened when resuming; a new run's is made once its directory exists (None until then)."""
    if len(obs_shape) == 1:
        return ReplayBuffer(config.buffer_size, obs_shape[0])
    if resume_dir is None:
        return None
    return FrameReplay.open(resume_dir / REPLAY_DIR, config.buffer_size, obs_shape, config.num_envs)


def _environments(config: DQNConfig) -> tuple[Any, Any, tuple[int, ...], int]:
    """``(spec, training envs, observation shape, number of actions)``, checked before anything is allocated."""
    spec = env_spec(config.env)
    envs = make_vector_env(config.env, config.num_envs, config.pixels, config.threads)
    obs_shape, n_actions = check_spaces(envs, config.env)
    check_fits_memory(config, obs_shape, n_actions)
    return spec, envs, obs_shape, n_actions


def _start_run(
    config: DQNConfig, env_id: str, device: str, runs_dir: str | Path, name: str | None, resume: str | None
) -> tuple[Run, bool]:
    """Open the run (named after the env by default); config.json also records an Atari game's protocol."""
    recorded = config_dict(config)
    if is_ale(env_id):
        recorded["protocol"] = ale_protocol(env_id)
    return start_run(
        RL.name, recorded, name=name or run_name(env_id), runs_dir=runs_dir, resume=resume,
        device=device, seed=config.seed,
    )  # fmt: skip


def _act(agent: DQN, obs: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Epsilon-greedy over the vector of environments: a random action with probability epsilon, else the greedy one."""
    explore = rng.random(len(obs)) < epsilon
    actions = rng.integers(agent.n_actions, size=len(obs))
    return actions if explore.all() else np.where(explore, actions, agent.greedy(obs))


def _log_training(
    run: Run, bar: Any, config: DQNConfig, state: Counters, epsilon: float, loss: Any, q_mean: Any, tick: float
) -> float:
    """A training line in metrics.jsonl and on the progress bar (stopping a diverged run); returns the time now."""
    record = _train_record(state, epsilon, loss, q_mean)
    run.log(record)
    _stop_if_diverged(record)
    now = time.perf_counter()
    steps_per_s = config.log_every / max(now - tick, 1e-9)
    bar.update(state.step, **{"steps/s": steps_per_s}, ret=record.get("episode_return"), eps=epsilon)
    return now


def _stop_if_diverged(record: dict[str, Any]) -> None:
    """A NaN or infinite loss never recovers: every later update is NaN too, so stop instead of training on."""
    if not math.isfinite(record.get("loss", 0.0)):
        raise DataError(
            f"training diverged at step {record['step']} (loss {record['loss']}): lower --learning-rate "
            "or --max-grad-norm (a best.pt already written predates it)"
        )


def _train_record(state: Counters, epsilon: float, loss: Any, q_mean: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"step": state.step, "episodes": state.episodes, "epsilon": round(epsilon, 6)}
    if state.recent_returns:
        record["episode_return"] = float(np.mean(state.recent_returns))
        record["episode_length"] = float(np.mean(state.recent_lengths))
    if loss is not None:
        record["loss"] = float(loss)
        record["q_mean"] = float(q_mean)
    return record


def _evaluate(
    run: Run,
    config: DQNConfig,
    agent: DQN,
    state: Counters,
    target_return: float | None,
    obs_shape: tuple[int, ...],
    n_actions: int,
) -> None:
    """Play greedy episodes (Atari: full games, raw scores), log them, keep the best policy, and decide whether
    the target is held."""
    returns, lengths = play_episodes(
        agent.greedy, config.env, config.eval_episodes, eval_seed(config.seed, state.evaluations), config.pixels
    )
    record: dict[str, Any] = {
        "step": state.step,
        "eval_return_mean": float(returns.mean()),
        "eval_return_std": float(returns.std()),
        "eval_return_min": float(returns.min()),
        "eval_length_mean": float(lengths.mean()),
    }
    score = float(returns.mean())
    if target_return is not None and score >= target_return:
        if config.confirm_episodes > 0:
            confirm, _ = play_episodes(
                agent.greedy, config.env, config.confirm_episodes, eval_seed(config.seed, state.evaluations, True),
                config.pixels,
            )  # fmt: skip
            score = float(confirm.mean())
            record["confirm_return_mean"] = score
            record["confirm_return_min"] = float(confirm.min())
        state.solved = score >= target_return
    state.evaluations += 1
    if score > state.best_score:
        state.best_score, state.best_step = score, state.step
        _save(run, "best.pt", config, agent, state, obs_shape, n_actions)
    record["best_return"] = state.best_score
    run.log(record)
    info(
        f"step {state.step}: eval return {record['eval_return_mean']:.1f} +- {record['eval_return_std']:.1f}"
        + (f", confirmed {record['confirm_return_mean']:.1f}" if "confirm_return_mean" in record else "")
        + (" -> target held, stopping" if state.solved else "")
    )


def _save(
    run: Run,
    filename: str,
    config: DQNConfig,
    agent: DQN,
    state: Counters,
    obs_shape: tuple[int, ...],
    n_actions: int,
    *,
    buffer: ReplayBuffer | FrameReplay | None = None,
    rng: np.random.Generator | None = None,
) -> None:
    """best.pt: the policy network alone. last.pt: everything a resumed run needs (of a ``FrameReplay``, where
    its files are)."""
    payload: dict[str, Any] = {"obs_shape": list(obs_shape), "n_actions": n_actions, "step": state.step}
    if buffer is None:
        payload["online"] = agent.online.state_dict()
    else:
        payload.update(
            agent=agent.state_dict(),
            progress=state.state_dict(),
            replay=buffer.state_dict(),
            numpy_rng=rng.bit_generator.state if rng is not None else None,
            torch_rng=torch.get_rng_state(),
        )
    save_checkpoint(
        run.checkpoints / filename,
        technique=RL.name,
        config=config_dict(config),
        state=payload,
        metrics={"best_return": state.best_score, "step": state.step},
    )


def _restore(
    run_dir: Path,
    config: DQNConfig,
    agent: DQN,
    buffer: ReplayBuffer | FrameReplay,
    rng: np.random.Generator,
    state: Counters,
    obs_shape: tuple[int, ...],
    n_actions: int,
) -> int:
    """Load what the run in ``run_dir`` saved, or refuse a checkpoint that does not fit; returns the step from
    which learning may start. last.pt holds networks, optimizer, memory, RNG states and counters. best.pt, all a
    kill during the first save of last.pt leaves, holds the policy and its step alone: a vector memory starts
    empty (a frame memory keeps what its files hold), it fills for ``learning_starts`` steps again, and the
    optimizer starts fresh."""
    path = Run(run_dir).resume_checkpoint()
    checkpoint = load_checkpoint(path, RL.name)
    payload = checkpoint["state"]
    saved = saved_obs_shape(payload)
    if (saved, payload["n_actions"]) != (obs_shape, n_actions):
        raise DataError(
            f"{path}: was trained on another environment (observations {saved}, actions {payload['n_actions']}), "
            f"not this one ({obs_shape}, {n_actions})"
        )
    try:
        if path.name == "best.pt":
            agent.online.load_state_dict(payload["online"])
        else:
            agent.load_state_dict(payload["agent"])
            buffer.load_state_dict(payload["replay"])
    except (RuntimeError, ValueError) as exc:
        raise DataError(f"{path}: does not fit this config ({str(exc).splitlines()[0]})") from None
    if path.name == "best.pt":
        agent.hard_update()
        state.step = state.best_step = int(payload["step"])
        state.best_score = float(checkpoint["metrics"]["best_return"])
        memory = "an empty replay memory" if isinstance(buffer, ReplayBuffer) else f"{len(buffer)} frames in memory"
        warn(
            f"{path.parent}: no last.pt (a kill hit its first save); resuming from best.pt at step {state.step} "
            f"with {memory} and a fresh optimizer"
        )
        return state.step + config.learning_starts
    rng.bit_generator.state = payload["numpy_rng"]
    torch.set_rng_state(payload["torch_rng"])
    state.load_state_dict(payload["progress"])
    return config.learning_starts


def _finish(
    run: Run, config: DQNConfig, state: Counters, status: str, target_return: float | None, wall: float
) -> TrainResult:
    records = run.read_metrics()
    plot_curves(
        run.plots / "returns.png",
        records,
        x="step",
        panels=[["episode_return", "eval_return_mean"], ["loss"], ["epsilon"]],
        title=f"DQN on {config.env}",
    )
    last_eval = next((r for r in reversed(records) if "eval_return_mean" in r), {})
    best = state.best_score if state.best_step >= 0 else None
    return run.finish(
        status,
        {"metric": "best_eval_return", "value": best},
        best={"eval_return": best, "step": state.best_step},
        final={
            "step": state.step,
            "episodes": state.episodes,
            "eval_return_mean": last_eval.get("eval_return_mean"),
            "train_return_mean_100": float(np.mean(state.recent_returns)) if state.recent_returns else None,
        },
        wall_time_s=wall,
        target_return=target_return,
        solved=state.solved,
        best_checkpoint=str(run.checkpoints / "best.pt") if best is not None else None,
    )
