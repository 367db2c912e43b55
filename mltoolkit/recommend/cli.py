"""`mltk recommend`: Collaborative filtering on user,item,rating data with implicit."""

from __future__ import annotations

import typer

app = typer.Typer(help="Collaborative filtering on user,item,rating data with implicit.", no_args_is_help=True)
