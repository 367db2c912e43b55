"""The root CLI: version, help, env, runs, and errors turned into exit codes."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import fails, ok


def test_version(mltk):
    assert ok(mltk("--version")).stdout.strip().startswith("mltk ")


def test_unknown_command_is_a_usage_error(mltk):
    assert mltk("nope").exit_code == 2
    assert mltk("runs", "list", "--bogus").exit_code == 2


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys, mltoolkit.cli as c\n"
        "heavy = [m for m in ('torch', 'lightgbm', 'implicit', 'torchvision', 'gymnasium', 'sklearn', 'pandas')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run([sys.executable, "-m", "mltoolkit", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "rl" in result.stdout


def test_env_json(mltk):
    info = ok(mltk("env", "--format", "json")).json()
    assert info["torch"] and info["cores_usable"] >= 1


def test_runs_show_missing_run_is_exit_3(mltk, tmp_path):
    fails(mltk("runs", "show", "nothing", "--runs-dir", tmp_path), 3, "nothing")


def test_runs_list_unknown_technique(mltk, tmp_path):
    fails(mltk("runs", "list", "--runs-dir", tmp_path, "--technique", "svm"), 3, "svm")


def test_a_package_missing_from_the_install_is_exit_4(mltk, monkeypatch, tmp_path):
    """A dependency's dependency left out (seen: fastapi without opentelemetry-api) is the install's fault, not a
    bug: exit 4 saying so, not "unexpected" exit 1."""
    monkeypatch.setitem(sys.modules, "mltoolkit.serve.app", None)  # importing it now raises ModuleNotFoundError
    fails(mltk("serve", "some-run", "--runs-dir", tmp_path), 4, "mltoolkit.serve.app", "missing from this installation")


def test_every_help_shows_its_defaults():
    """A help text's ``[default: ...]`` must be escaped, or rich reads it as markup and silently drops it."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from mltoolkit.cli import app

    def walk(command, path):
        subcommands = getattr(command, "commands", {})
        if not subcommands:
            yield path, command
        for name, sub in subcommands.items():
            yield from walk(sub, [*path, name])

    runner = CliRunner()
    for path, command in walk(get_command(app), []):
        promised = sum("default:" in (getattr(p, "help", None) or "") for p in command.params)
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "300"}).output.count("default:")
        assert shown >= promised, f"mltk {' '.join(path)} --help drops a [default: ...]"
