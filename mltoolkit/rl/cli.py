"""`mltk rl`: Deep Q-learning (DQN) on gymnasium environments."""

from __future__ import annotations

import typer

app = typer.Typer(help="Deep Q-learning (DQN) on gymnasium environments.", no_args_is_help=True)
