"""`mltk boost`: Gradient boosting on tables with LightGBM: classification, regression, ranking."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Gradient boosting on tables with LightGBM: classification, regression, ranking.", no_args_is_help=True
)
