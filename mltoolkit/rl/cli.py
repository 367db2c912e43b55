"""`mltk rl`: Deep Q-learning (DQN) on gymnasium environments.

Thin commands over ``mltoolkit.rl``: parse the flags, call the API, print the result. ``train``'s
options are ``DQNConfig``'s fields; one not typed arrives as ``None``, so the preset, a ``--config``
file or a resumed run decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options
from mltoolkit.core.params import config_options
from mltoolkit.rl.config import DQNConfig

app = typer.Typer(help="Deep Q-learning (DQN) on gymnasium environments.", no_args_is_help=True)

Threads = Annotated[
    int | None,
    typer.Option("--threads", help="CPU threads for torch (default: 1, the fastest for DQN's small networks)."),
]


@app.command("train")
@config_options(DQNConfig)
def train_command(
    flags: dict,
    config: options.ConfigFile = None,
    runs_dir: options.RunsDir = Path("runs"),
    name: options.RunName = None,
    resume: options.Resume = None,
    quiet: options.Quiet = False,
) -> None:
    """Train a DQN agent; prints one JSON line (run_dir, best evaluation return, steps) when done."""
    from mltoolkit import rl
    from mltoolkit.core.console import emit_json, set_quiet

    set_quiet(quiet)
    summary = rl.train(config_file=config, runs_dir=runs_dir, name=name, resume=resume, **flags)
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
