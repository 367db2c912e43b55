"""``mltk serve RUN``: the command over ``mltoolkit.serve.server.serve`` (imports only typer here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mltoolkit.core import options


def serve_command(
    run: options.RunRef,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 exposes the model to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Server processes, each with its own copy of the model.")
    ] = 1,
    max_batch: Annotated[
        int, typer.Option("--max-batch", min=1, help="Most inputs that concurrent requests share in one predict call.")
    ] = 32,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="How long a request waits for others to fill its batch.")
    ] = 5.0,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            metavar="VAR",
            help="Require 'Authorization: Bearer <value of $VAR>' on every request but /health.",
        ),
    ] = None,  # fmt: skip
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0, help="Larger request bodies are refused with 413.")
    ] = 20.0,
    device: options.Device = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="CPU threads per worker for the model. \\[default: cores / workers]"),
    ] = None,
    runs_dir: options.RunsDir = Path("runs"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No status lines and no per-request log lines.")] = False,
) -> None:
    """Serve a run's model over HTTP: /predict, /health, /ready, /metadata, /metrics, /docs and a page at /."""
    from importlib.util import find_spec

    from mltoolkit.core.console import set_quiet
    from mltoolkit.core.device import available_cores
    from mltoolkit.core.errors import ResourceError

    needed = ("fastapi", "uvicorn", "prometheus_client", "multipart", "orjson")
    missing = [name for name in needed if find_spec(name) is None]
    if missing:
        raise ResourceError(f"{', '.join(missing)} not installed (needed by mltk serve); pip install 'mltk[serve]'")
    from mltoolkit.serve.app import Settings
    from mltoolkit.serve.server import serve

    set_quiet(quiet)
    settings = Settings(max_batch=max_batch, max_wait_ms=max_wait_ms, max_body_mb=max_body_mb, log=not quiet)
    if threads is None:  # workers share the cores: N processes x all cores each would oversubscribe them
        threads = max(1, available_cores() // workers)
    serve(
        run, settings, host=host, port=port, workers=workers, token_env=token_env, runs_dir=runs_dir,
        device=device or "auto", threads=threads,
    )  # fmt: skip
