"""The contract all five sub-apps share (DESIGN.md): the same trio, the same train options, and the same
answer to a run that does not exist. A new technique, or a change to one, that breaks the shape fails here."""

from __future__ import annotations

import pytest

from tests.conftest import fails

TECHNIQUES = ["rl", "transfer", "boost", "segment", "recommend"]
TRAIN_OPTIONS = {"--config", "--device", "--seed", "--runs-dir", "--name", "--resume", "--quiet"}

# The least each verb needs besides RUN to get as far as looking the run up.
EXTRA_ARGS = {
    ("transfer", "predict"): ["image.png"],
    ("boost", "evaluate"): ["table.csv"],
    ("segment", "predict"): ["image.png", "--output", "masks"],
}


def _command(technique: str, verb: str):
    from typer.main import get_command

    from mltoolkit.cli import app

    return get_command(app).commands[technique].commands.get(verb)


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_trio_and_train_options(technique):
    for verb in ("train", "evaluate", "predict"):
        assert _command(technique, verb) is not None, f"mltk {technique} {verb} is missing"
    train_options = {name for param in _command(technique, "train").params for name in param.opts}
    assert TRAIN_OPTIONS <= train_options, f"mltk {technique} train lacks {TRAIN_OPTIONS - train_options}"
    for verb in ("evaluate", "predict"):
        assert "--runs-dir" in {name for param in _command(technique, verb).params for name in param.opts}


@pytest.mark.parametrize("verb", ["evaluate", "predict"])
@pytest.mark.parametrize("technique", TECHNIQUES)
def test_unknown_run_is_exit_3_naming_it(mltk, tmp_path, technique, verb):
    extra = EXTRA_ARGS.get((technique, verb), [])
    for run, says in (("no-such-run", "no-such-run"), ("latest", "no runs under")):
        fails(mltk(technique, verb, run, *extra, "--runs-dir", tmp_path / "runs", input=""), 3, says)


@pytest.mark.parametrize("technique", [t for t in TECHNIQUES if t != "rl"])  # rl has a default env
def test_train_without_data_is_a_usage_error(mltk, tmp_path, technique):
    fails(mltk(technique, "train", "--runs-dir", tmp_path / "runs"), 2)
