"""The ``mltk`` command: one sub-app per technique, plus ``env`` and ``runs``.

Errors become one line on stderr and an exit code (docs/cli.md); set ``MLTK_DEBUG=1`` for the
traceback. Nothing heavy is imported here: ``mltk --help`` must answer in well under a second.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mltoolkit import __version__
from mltoolkit.core import options
from mltoolkit.core.errors import MltkError, Terminated
from mltoolkit.export.cli import export_command
from mltoolkit.serve.cli import serve_command
from mltoolkit.techniques import TECHNIQUES


class _ErrorsToExitCodes(TyperGroup):
    """Turn exceptions from any command into a one-line message and the documented exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        from mltoolkit.core.runs import close_runs

        outcome = "failed"
        try:
            result = super().invoke(ctx)
            outcome = None
            return result
        except typer.Exit as exc:
            if not exc.exit_code:
                outcome = None
            raise
        except (typer.Abort, typer.TyperException):
            raise
        except MltkError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt as exc:
            outcome = "interrupted"
            terminated = isinstance(exc, Terminated)
            _fail("terminated" if terminated else "interrupted", 143 if terminated else 130)
        except BrokenPipeError:
            outcome = None
            _quiet_broken_pipe()
        except Exception as exc:
            if os.environ.get("MLTK_DEBUG"):
                raise
            if isinstance(exc, ModuleNotFoundError):  # often a dependency's dependency that the install lacks
                _fail(f"{exc}: a package is missing from this installation; reinstall mltk with pip", 4)
            _fail(f"unexpected {type(exc).__name__}: {exc} (set MLTK_DEBUG=1 for the traceback)", 1)
        finally:
            close_runs(outcome)  # a run this command opened and did not finish is never left "running"


def _quiet_broken_pipe() -> None:
    """The reader left (``mltk ... | head``): end quietly with success, like other Unix tools."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(0)


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


app = typer.Typer(
    cls=_ErrorsToExitCodes,
    help="Five classic machine-learning techniques from notebook to production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for _technique in TECHNIQUES:
    app.add_typer(_technique.cli(), name=_technique.name)

runs_app = typer.Typer(help="List and inspect run directories.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.command("export")(export_command)
app.command("serve")(serve_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mltk {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Five classic machine-learning techniques, one shape: train, evaluate, predict."""


@app.command("env")
def env_command(fmt: options.ResultFormat = "auto") -> None:
    """Print library versions, accelerators and thread counts."""
    from mltoolkit.core.console import print_result
    from mltoolkit.core.environment import describe_environment

    print_result(describe_environment(), fmt, title="mltk environment")


@runs_app.command("list")
def runs_list(
    runs_dir: options.RunsDir = Path("runs"),
    technique: Annotated[str | None, typer.Option("--technique", "-t", help="Only this technique's runs.")] = None,
    fmt: options.ResultFormat = "auto",
) -> None:
    """List runs: technique, name, created, status and headline metric."""
    from mltoolkit.core.console import print_result
    from mltoolkit.core.runs import describe, iter_runs
    from mltoolkit.techniques import get

    if technique is not None:
        get(technique)
    rows = [describe(run) for run in iter_runs(runs_dir, technique)]
    print_result(rows, fmt, title=f"runs in {runs_dir}")


@runs_app.command("show")
def runs_show(
    run: options.RunRef, runs_dir: options.RunsDir = Path("runs"), fmt: options.ResultFormat = "auto"
) -> None:
    """Print a run's summary.json (and where it lives)."""
    from mltoolkit.core.console import print_result
    from mltoolkit.core.runs import Run, resolve_run_dir

    found = Run(resolve_run_dir(run, runs_dir))
    print_result({"path": str(found.path), **found.read_summary()}, fmt, title=found.name)


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)  # like Ctrl-C: save last, mark the run interrupted, exit 143
    app(prog_name="mltk")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
