"""`mltk segment`: Semantic segmentation with fully convolutional networks."""

from __future__ import annotations

import typer

app = typer.Typer(help="Semantic segmentation with fully convolutional networks.", no_args_is_help=True)
