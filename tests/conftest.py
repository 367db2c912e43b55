"""Shared test helpers: run the real CLI in-process and parse what it prints."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tests share 2 cores; pools sized to 1 run fastest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The learning tests (minutes each) first: under ``-n auto --dist loadfile --no-loadscope-reorder``
    (the Makefile) they start at once, instead of queueing behind each other at the end of the run."""
    items.sort(key=lambda item: not item.path.name.endswith("_learning.py"))


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


def invoke(*args: Any, input: str | bytes | None = None, env: dict[str, str] | None = None) -> CliResult:
    """``invoke("rl", "train", ...)`` runs the real CLI in-process, as the shell would: the one runner of the tests."""
    from mltoolkit.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], input=input, env=env, catch_exceptions=True)
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return CliResult(result.exit_code, result.stdout, result.stderr, exception)


@pytest.fixture
def mltk() -> Callable[..., CliResult]:
    """The CLI runner as a fixture: ``mltk("rl", "train", ..., input="...")``."""
    return invoke


def assert_run_dir(path: str | Path, technique: str) -> dict[str, Any]:
    """The run-directory format every technique writes (docs/run-directory.md); returns its summary."""
    path = Path(path)
    for name in ("config.json", "env.json", "metrics.jsonl", "summary.json"):
        assert (path / name).is_file(), f"{path} lacks {name}"
    summary = json.loads((path / "summary.json").read_text())
    assert summary["technique"] == technique and summary["status"] not in ("running", "failed"), summary
    assert not [p.name for p in path.rglob(".*") if p.is_file() and p.name != ".lock"], "temporary files left"
    return summary


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
