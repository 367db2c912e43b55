"""Load a run's Predictor through the registry and run the app on uvicorn.

The server finds a run's technique from the run's own files and calls that technique's ``load``; nothing
here knows what a model is. With one worker the model is loaded before the socket opens (a bad run is
exit 3, and the server is up in a fraction of a second after that); with ``--workers N`` uvicorn starts N
processes and each loads its own copy (the settings travel in an environment variable, the token only by
the name of its variable). SIGTERM and Ctrl-C let in-flight requests finish, then the command exits 0.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, replace
from importlib import import_module
from pathlib import Path
from typing import Any

from mltoolkit.core.console import info
from mltoolkit.core.contract import Predictor
from mltoolkit.core.errors import DataError, ResourceError, UsageError
from mltoolkit.core.runs import Run, resolve_run_dir
from mltoolkit.serve.app import Settings, create_app
from mltoolkit.serve.metrics import MULTIPROCESS_ENV
from mltoolkit.techniques import get

_WORKER_ENV = "MLTK_SERVE_WORKER"  # JSON: what each of N worker processes needs to build its app


def load_predictor(
    run: str | Path, *, runs_dir: str | Path = "runs", device: str = "auto", threads: int | None = None
) -> tuple[Predictor, str]:
    """The run's Predictor, loaded by its technique's ``load``, and the input kind that technique serves."""
    path = resolve_run_dir(run, runs_dir)
    technique = get(Run(path).technique)
    load = getattr(import_module(technique.package), "load", None)
    if load is None or not technique.serves:
        raise DataError(f"{path}: {technique.name} runs cannot be served yet ({technique.package} has no load())")
    return load(path, runs_dir=runs_dir, device=device, threads=threads), technique.serves


def token_from(variable: str | None) -> str | None:
    """The bearer token held by environment variable ``variable`` (never a command-line value)."""
    if variable is None:
        return None
    token = os.environ.get(variable, "")
    if not token.strip():
        raise UsageError(f"--token-env {variable}: that environment variable is unset or empty")
    return token


def serve(
    run: str, settings: Settings, *, host: str, port: int, workers: int, token_env: str | None,
    runs_dir: Path, device: str, threads: int | None,
) -> None:  # fmt: skip
    """Serve ``run`` until SIGTERM or Ctrl-C."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    token = token_from(token_env)  # refused before any model is loaded
    loaded = {"run": run, "runs_dir": str(runs_dir), "device": device, "threads": threads}
    if workers > 1:
        resolve_run_dir(run, runs_dir)  # a bad RUN fails here, once, instead of in every worker
        os.environ[_WORKER_ENV] = json.dumps({"load": loaded, "settings": asdict(settings), "token_env": token_env})
        target: Any = f"{__name__}:worker_app"
        what = f"run {run}"
    else:
        predictor, kind = load_predictor(**loaded)
        target = create_app(predictor, kind, replace(settings, token=token))
        what = f"{predictor.technique} run {predictor.run_dir or run}"
    config = uvicorn.Config(
        target, host=host, port=port, workers=workers, factory=workers > 1, access_log=False,
        log_level="warning", timeout_graceful_shutdown=30,
    )  # fmt: skip
    server = uvicorn.Server(config)
    info(f"serving {what} on http://{host}:{port} ({workers} worker{'s' * (workers > 1)}); Ctrl-C stops")
    try:
        if workers > 1:
            with tempfile.TemporaryDirectory(prefix="mltk-metrics-") as shared:  # the workers' summed /metrics
                os.environ[MULTIPROCESS_ENV] = shared
                Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the signal it stopped on, once it has stopped cleanly
        pass
    if workers == 1 and not server.started:
        raise ResourceError(f"could not serve on {host}:{port} (the reason is logged above)")
    info("server stopped")


def worker_app() -> Any:
    """The app of one of ``--workers N`` processes (uvicorn's factory), built from the parent's settings."""
    spec = json.loads(os.environ[_WORKER_ENV])
    predictor, kind = load_predictor(**spec["load"])
    return create_app(predictor, kind, Settings(**{**spec["settings"], "token": token_from(spec["token_env"])}))
