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
