"""Shared test helpers: run the real CLI in-process and parse what it prints."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from typer.testing import CliRunner

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tests share 2 cores; pools sized to 1 run fastest


class CliResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str, exception: BaseException | None) -> None:
        self.exit_code, self.stdout, self.stderr, self.exception = exit_code, stdout, stderr, exception

    def json(self) -> Any:
        """The last JSON document printed on stdout."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return json.loads(lines[-1])

    def jsonl(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"<exit {self.exit_code}\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}>"


@pytest.fixture(autouse=True)
def _release_runs():
    """Runs a test opened through the Python API are released after it, as the CLI does after a command."""
    yield
    from mltoolkit.core.runs import close_runs

    close_runs()


@pytest.fixture
def mltk() -> Callable[..., CliResult]:
    """``mltk("rl", "train", ..., input="...")`` runs the CLI in-process like the shell would."""
    from mltoolkit.cli import app

    def run(*args: Any, input: str | bytes | None = None, env: dict[str, str] | None = None) -> CliResult:
        runner = CliRunner()
        result = runner.invoke(app, [str(a) for a in args], input=input, env=env, catch_exceptions=True)
        exception = result.exception if not isinstance(result.exception, SystemExit) else None
        return CliResult(result.exit_code, result.stdout, result.stderr, exception)

    return run


def ok(result: CliResult) -> CliResult:
    """Assert a CLI call succeeded, showing its output when it did not."""
    assert result.exit_code == 0, repr(result)
    return result


def fails(result: CliResult, code: int, *fragments: str) -> CliResult:
    """Assert a CLI call failed with ``code`` and a one-line message holding every fragment."""
    assert result.exit_code == code, repr(result)
    assert result.exception is None, f"traceback instead of a message: {result.exception!r}"
    message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in stderr: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert message, "no error message on stderr"
    return result


def args(**options: Any) -> Sequence[str]:
    """``args(epochs=1, batch_size=4)`` -> ``["--epochs", "1", "--batch-size", "4"]``."""
    out: list[str] = []
    for key, value in options.items():
        out += [f"--{key.replace('_', '-')}", str(value)]
    return out
