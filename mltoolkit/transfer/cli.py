"""`mltk transfer`: Transfer learning on an image folder: fine-tune or feature-extract a pretrained network."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Transfer learning on an image folder: fine-tune or feature-extract a pretrained network.",
    no_args_is_help=True,
)
