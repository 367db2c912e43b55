"""Errors that end a command with a one-line message and a documented exit code.

Exit codes (docs/cli.md): 0 ok, 1 bug, 2 usage, 3 bad data or config, 4 resource unavailable,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM). The root CLI turns an ``MltkError`` into its
message on stderr and its code.
"""

from __future__ import annotations


class MltkError(Exception):
    """Base class: ``str(error)`` is the one line the user sees."""

    exit_code = 1


class UsageError(MltkError):
    """The command line itself is wrong in a way Typer could not see (conflicting options)."""

    exit_code = 2


class DataError(MltkError):
    """Bad data or config: missing file, wrong columns or shapes, empty input, unknown id."""

    exit_code = 3


class ResourceError(MltkError):
    """Something the command needs is not available here: CUDA, a weights download."""

    exit_code = 4


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler, a container stopping), raised where Ctrl-C would be, so every
    training loop saves ``last`` the same way; the command then exits 143."""
