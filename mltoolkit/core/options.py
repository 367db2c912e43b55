"""Typer option types shared by the five sub-apps, so every ``train`` reads the same way.

Options that can also come from ``--config`` default to ``None``: ``None`` means "not typed", so
the config file, preset or built-in default decides (see ``core.config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="JSON, YAML or TOML file of options; flags typed on the command line override it."),
]
Device = Annotated[
    str | None,
    typer.Option(
        "--device", help="auto, cpu, cuda, cuda:N or mps. auto picks CUDA, then MPS, then CPU. \\[default: auto]"
    ),
]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed for every random generator. \\[default: 0]")]
Threads = Annotated[
    int | None,
    typer.Option("--threads", help="CPU threads to use; 0 means every core this process may use. \\[default: 0]"),
]
Deterministic = Annotated[
    bool, typer.Option("--deterministic", help="Ask for deterministic algorithms (slower; bit-identical reruns).")
]
RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where run directories are created.")]
RunName = Annotated[
    str | None, typer.Option("--name", help="Run name; a taken name gets -2, -3... \\[default: from the data/model]")
]
Resume = Annotated[
    str | None,
    typer.Option(
        "--resume", help="Continue a run where it stopped (directory, <tech>/<name>, or latest: the last interrupted)."
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or status lines on stderr.")]
ResultFormat = Annotated[
    str, typer.Option("--format", help="auto (table on a terminal, JSON otherwise), table or json.")
]
RecordFormat = Annotated[str, typer.Option("--format", help="csv or jsonl.")]
Strict = Annotated[bool, typer.Option("--strict", help="An unreadable image is an error (exit 3), not a skip.")]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="Write here (atomically) instead of stdout.")]
RunRef = Annotated[
    str,
    typer.Argument(help="A run directory, a checkpoint file, <tech>/<name> or <name> under --runs-dir, or latest."),
]


def backend_option(backends: tuple[str, ...]) -> Any:
    """``--backend`` for a technique's ``predict``, from its registry entry's backends (the first, the native
    one, is the command's default); the technique's ``load`` refuses any other name (exit 2)."""
    return Annotated[
        str,
        typer.Option(
            "--backend",
            help=f"What runs the model, one of: {', '.join(backends)}. onnxruntime runs the run's ONNX export "
            "(`mltk export RUN --format onnx` first; needs mltk\\[export]), to test the file you ship.",
        ),
    ]
