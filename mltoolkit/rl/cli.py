"""`mltk rl`: Deep Q-learning (DQN) on gymnasium environments.

Thin commands over ``mltoolkit.rl``: parse the flags, call the API, print the result. ``train``'s
options are ``DQNConfig``'s fields; one not typed arrives as ``None``, so the preset, a ``--config``
file or a resumed run decides. ``predict`` prints what ``rl.load(run).predict`` returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options
from mltoolkit.core.params import config_options
from mltoolkit.rl.config import DQNConfig
from mltoolkit.techniques import RL

app = typer.Typer(help="Deep Q-learning (DQN) on gymnasium environments.", no_args_is_help=True)

Threads = Annotated[
    int | None,
    typer.Option("--threads", help="CPU threads (default: 1, the fastest for DQN's small networks)."),
]
Backend = options.backend_option(RL.backends)


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
    from mltoolkit.core.runs import resumed_config
    from mltoolkit.rl.config import dqn_config

    set_quiet(quiet)
    resolved = dqn_config(flags, config, resumed_config(resume, runs_dir, RL.name))
    result = rl.train(resolved, runs_dir=runs_dir, name=name, resume=resume)
    summary = result.summary
    emit_json(
        {
            "run_dir": str(result.run_dir),
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
    backend: Backend = RL.backends[0],
) -> None:
    """Greedy action for each observation line, streamed as it arrives: {"action": A} per line."""
    from mltoolkit import rl
    from mltoolkit.core.io import RecordWriter
    from mltoolkit.rl.prediction import read_batches

    agent = rl.load(run, runs_dir=runs_dir, threads=threads or 1, backend=backend)
    with RecordWriter(output, fmt) as writer:
        for batch in read_batches(agent, observations):
            writer.write_all(agent.predict(batch, q_values=q_values))


@app.command("presets")
def presets_command(fmt: options.ResultFormat = "auto") -> None:
    """List the built-in hyperparameter presets (mltoolkit/rl/presets.yaml)."""
    from mltoolkit.core.console import print_result
    from mltoolkit.rl.config import load_presets

    rows = [{"preset": name, **values} for name, values in load_presets().items()]
    print_result(rows, fmt, title="DQN presets")
