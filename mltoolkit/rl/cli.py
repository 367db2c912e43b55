"""`mltk rl`: Deep Q-learning (DQN) on gymnasium environments.

Thin commands over ``mltoolkit.rl``: parse the flags, call the API, print the result. Flags default
to ``None`` (= not typed) so the preset and a ``--config`` file decide unless a flag is typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options

app = typer.Typer(help="Deep Q-learning (DQN) on gymnasium environments.", no_args_is_help=True)

_HYPER = "Hyperparameters (default: the env's preset; `mltk rl presets` lists them)"
_EVAL = "Evaluation and stopping"


def _opt(flag: str, help: str, panel: str = _HYPER) -> typer.models.OptionInfo:
    return typer.Option(flag, help=help, rich_help_panel=panel)


Threads = Annotated[
    int | None,
    typer.Option("--threads", help="CPU threads for torch (default: 1, the fastest for DQN's small networks)."),
]


@app.command("train")
def train_command(
    env: Annotated[
        str | None,
        typer.Option(
            "--env", "-e", help="Gymnasium environment id (default: CartPole-v1); module:Env-v0 imports module first."
        ),
    ] = None,
    total_steps: Annotated[
        int | None, _opt("--total-steps", "Environment steps at most, all vector envs counted.")
    ] = None,
    num_envs: Annotated[
        int | None, _opt("--num-envs", "Environments stepped together in a gymnasium SyncVectorEnv (default: 1).")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Preset name, or none for the built-in defaults (default: the --env id's preset if there is one).",
        ),
    ] = None,
    hidden: Annotated[
        str | None, _opt("--hidden", "Hidden layer sizes of the Q-network, comma-separated, e.g. 256,256.")
    ] = None,
    learning_rate: Annotated[float | None, _opt("--learning-rate", "Adam learning rate.")] = None,
    batch_size: Annotated[int | None, _opt("--batch-size", "Replay transitions per gradient step.")] = None,
    buffer_size: Annotated[int | None, _opt("--buffer-size", "Replay memory capacity (transitions).")] = None,
    learning_starts: Annotated[
        int | None, _opt("--learning-starts", "Steps of pure collection before learning.")
    ] = None,
    gamma: Annotated[float | None, _opt("--gamma", "Discount factor of future rewards.")] = None,
    train_freq: Annotated[int | None, _opt("--train-freq", "Environment steps between training rounds.")] = None,
    gradient_steps: Annotated[int | None, _opt("--gradient-steps", "Gradient steps per training round.")] = None,
    target_update: Annotated[
        str | None, _opt("--target-update", "hard (copy every --target-update-interval steps) or soft (Polyak, --tau).")
    ] = None,
    target_update_interval: Annotated[
        int | None, _opt("--target-update-interval", "Environment steps between hard target copies.")
    ] = None,
    tau: Annotated[float | None, _opt("--tau", "Soft update rate, applied every training round.")] = None,
    double_dqn: Annotated[
        bool | None, _opt("--double-dqn/--no-double-dqn", "Double DQN: the online net picks a', the target values it.")
    ] = None,
    max_grad_norm: Annotated[float | None, _opt("--max-grad-norm", "Gradient norm clipping.")] = None,
    exploration: Annotated[str | None, _opt("--exploration", "Epsilon schedule: linear or exponential.")] = None,
    epsilon_start: Annotated[float | None, _opt("--epsilon-start", "Initial exploration rate.")] = None,
    epsilon_end: Annotated[float | None, _opt("--epsilon-end", "Final exploration rate.")] = None,
    exploration_steps: Annotated[
        int | None, _opt("--exploration-steps", "linear: steps to reach --epsilon-end; exponential: time constant.")
    ] = None,
    eval_every: Annotated[int | None, _opt("--eval-every", "Steps between greedy evaluations.", _EVAL)] = None,
    eval_episodes: Annotated[int | None, _opt("--eval-episodes", "Episodes per evaluation.", _EVAL)] = None,
    confirm_episodes: Annotated[
        int | None,
        _opt("--confirm-episodes", "Fresh episodes that must also reach the target before stopping (0: none).", _EVAL),
    ] = None,
    target_return: Annotated[
        float | None,
        _opt(
            "--target-return",
            "Stop once evaluation holds this mean return; inf never stops early. (default: the env's reward threshold)",
            _EVAL,
        ),
    ] = None,
    log_every: Annotated[
        int | None, _opt("--log-every", "Steps between training lines in metrics.jsonl.", _EVAL)
    ] = None,
    config: options.ConfigFile = None,
    device: options.Device = None,
    seed: options.Seed = None,
    threads: Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: options.Resume = None,
    quiet: options.Quiet = False,
) -> None:
    """Train a DQN agent; prints one JSON line (run_dir, best evaluation return, steps) when done."""
    from mltoolkit import rl
    from mltoolkit.core.console import emit_json, set_quiet

    set_quiet(quiet)
    flags = {
        "total_steps": total_steps,
        "num_envs": num_envs,
        "hidden": _int_list(hidden, "--hidden") if hidden is not None else None,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "buffer_size": buffer_size,
        "learning_starts": learning_starts,
        "gamma": gamma,
        "train_freq": train_freq,
        "gradient_steps": gradient_steps,
        "target_update": target_update,
        "target_update_interval": target_update_interval,
        "tau": tau,
        "double_dqn": double_dqn,
        "max_grad_norm": max_grad_norm,
        "exploration": exploration,
        "epsilon_start": epsilon_start,
        "epsilon_end": epsilon_end,
        "exploration_steps": exploration_steps,
        "eval_every": eval_every,
        "eval_episodes": eval_episodes,
        "confirm_episodes": confirm_episodes,
        "target_return": target_return,
        "log_every": log_every,
        "seed": seed,
        "device": device,
        "threads": threads,
    }
    summary = rl.train(env, preset=preset, config_file=config, runs_dir=runs_dir, name=name, resume=resume, **flags)
    emit_json(
        {
            "run_dir": summary["run_dir"],
            "status": summary["status"],
            "best_eval_return": summary["best"]["eval_return"],
            "best_step": summary["best"]["step"],
            "steps": summary["final"]["step"],
            "episodes": summary["final"]["episodes"],
            "wall_time_s": summary["wall_time_s"],
        }
    )


def _int_list(text: str, flag: str) -> list[int]:
    from mltoolkit.core.errors import DataError

    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise DataError(f"{flag} {text!r}: expected comma-separated integers like 64,64") from None
    if not values or min(values) < 1:
        raise DataError(f"{flag} {text!r}: expected positive layer sizes like 64,64")
    return values


@app.command("evaluate")
def evaluate_command(
    run: options.RunRef,
    episodes: Annotated[int, typer.Option("--episodes", "-n", help="Greedy episodes to play.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Episode i starts from reset(seed=SEED + i).")] = 0,
    gif: Annotated[Path | None, typer.Option("--gif", help="Write the first episode as an animated GIF here.")] = None,
    threads: Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
    fmt: options.ResultFormat = "auto",
    quiet: options.Quiet = False,
) -> None:
    """Play greedy episodes with the run's best policy; print mean/std/min/max return, write eval.json."""
    from mltoolkit import rl
    from mltoolkit.core.console import print_result, set_quiet
    from mltoolkit.core.device import set_threads

    set_quiet(quiet)
    set_threads(threads or 1)
    result = rl.evaluate(run, episodes=episodes, seed=seed, gif=gif, runs_dir=runs_dir)
    print_result(result, fmt, title=f"DQN on {result['env']}")


@app.command("predict")
def predict_command(
    run: options.RunRef,
    observations: Annotated[
        str, typer.Argument(help="JSON lines, one observation array per line; - reads stdin.")
    ] = "-",
    q_values: Annotated[bool, typer.Option("--q-values", help="Also print every action's Q-value.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: options.Output = None,
    threads: Threads = None,
    runs_dir: options.RunsDir = Path("runs"),
) -> None:
    """Greedy action for each observation line, streamed as it arrives: {"action": A} per line."""
    from mltoolkit.core.device import set_threads
    from mltoolkit.core.io import RecordWriter, iter_lines, source_name
    from mltoolkit.rl.policy import load_policy
    from mltoolkit.rl.prediction import predict_lines

    set_threads(threads or 1)
    policy = load_policy(run, runs_dir)
    with RecordWriter(output, fmt) as writer:
        writer.write_all(predict_lines(policy, iter_lines(observations), source_name(observations), q_values))


@app.command("presets")
def presets_command(fmt: options.ResultFormat = "auto") -> None:
    """List the built-in hyperparameter presets (mltoolkit/rl/presets.yaml)."""
    from mltoolkit.core.console import print_result
    from mltoolkit.rl.config import load_presets

    rows = [{"preset": name, **values} for name, values in load_presets().items()]
    print_result(rows, fmt, title="DQN presets")
