"""`mltk rl`: bad options, files and runs are one line on stderr and exit 3, with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import fails, ok
from tests.test_rl_cli import TINY

pytest.importorskip("gymnasium")
torch = pytest.importorskip("torch")


def _nothing_written(runs: Path) -> bool:
    return not (runs / "rl").exists() or not any((runs / "rl").iterdir())


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--total-steps", "0"),
        ("--total-steps", "-1"),
        ("--batch-size", "0"),
        ("--learning-rate", "-1"),
        ("--learning-rate", "nan"),
        ("--gamma", "2"),
        ("--epsilon-start", "5"),
        ("--epsilon-end", "-0.1"),
        ("--train-freq", "0"),
        ("--gradient-steps", "-1"),
        ("--eval-every", "0"),
        ("--log-every", "0"),
        ("--tau", "5"),
        ("--max-grad-norm", "-1"),
        ("--buffer-size", "0"),
        ("--num-envs", "0"),
        ("--eval-episodes", "0"),
        ("--seed", "-1"),
        ("--hidden", "64,0"),
        ("--target-return", "nan"),
    ],
)
def test_meaningless_option_values_are_refused_before_anything_is_written(mltk, tmp_path, flag, value):
    fails(mltk("rl", "train", "--runs-dir", tmp_path, "--quiet", *TINY, flag, value), 3, flag, value)
    assert _nothing_written(tmp_path)


def test_learning_that_could_never_start_is_refused(mltk, tmp_path):
    fails(
        mltk("rl", "train", "--runs-dir", tmp_path, *TINY, "--learning-starts", "300"),
        3,
        "--learning-starts",
        "--total-steps",
    )
    assert _nothing_written(tmp_path)


def test_a_diverging_run_stops_with_exit_3_instead_of_training_on_nan(mltk, tmp_path):
    fails(
        mltk("rl", "train", "--runs-dir", tmp_path, *TINY, "--learning-rate", "1e30"), 3, "diverged", "--learning-rate"
    )


@pytest.mark.parametrize(
    ("flag", "value", "fits"),
    [("--buffer-size", "1000000000000", "--buffer-size"), ("--hidden", "100000,100000", "--hidden")],
)
def test_memory_that_does_not_fit_is_refused_naming_what_fits(mltk, tmp_path, flag, value, fits):
    result = fails(mltk("rl", "train", "--runs-dir", tmp_path, *TINY, flag, value), 3, flag, "available", "at most")
    largest = result.stderr.split("at most")[-1]
    assert fits in largest
    assert _nothing_written(tmp_path)


def test_memory_estimate_counts_every_parameter_and_transition():
    from mltoolkit.rl.networks import QNetwork, parameter_count
    from mltoolkit.rl.replay import ReplayBuffer

    network = QNetwork(4, 2, (16, 8))
    assert parameter_count("mlp", (4,), 2, (16, 8)) == sum(p.numel() for p in network.parameters())
    buffer = ReplayBuffer(10, 4)
    stored = sum(getattr(buffer, name).nbytes for name in ("obs", "actions", "rewards", "next_obs", "terminated"))
    assert ReplayBuffer.bytes_per_transition(4) * 10 == stored


def test_resume_keeps_an_infinite_target_return(mltk, tmp_path):
    run = Path(
        ok(
            mltk(
                "rl", "train", "--runs-dir", tmp_path, "--quiet", *TINY,
                "--total-steps", "150", "--target-return", "inf", "--name", "endless",
            )
        ).json()["run_dir"]
    )  # fmt: skip
    assert json.loads((run / "config.json").read_text())["target_return"] == "inf"
    # Read back as null, the resumed run would fall back to CartPole's 475 and could stop as "solved".
    result = ok(mltk("rl", "train", "--resume", run, "--runs-dir", tmp_path, "--total-steps", "300", "--quiet")).json()
    assert result["status"] == "completed" and result["steps"] == 300
    assert json.loads((run / "config.json").read_text())["target_return"] == "inf"  # not null: the default


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [("--gamma", "2", "--gamma"), ("--hidden", "32,32", "last.pt"), ("--env", "Acrobot-v1", "another environment")],
)
def test_resume_that_cannot_go_on_leaves_the_run_as_it_was(mltk, tmp_path, flag, value, says):
    run = Path(ok(mltk("rl", "train", "--runs-dir", tmp_path, "--quiet", *TINY, "--name", "kept")).json()["run_dir"])
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    fails(mltk("rl", "train", "--resume", run, "--runs-dir", tmp_path, flag, value), 3, says)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"} == before


@pytest.mark.parametrize("verb", ["predict", "evaluate"])
@pytest.mark.parametrize("kind", ["random", "foreign", "incomplete"])
def test_a_file_that_is_not_an_rl_checkpoint_is_exit_3(mltk, tmp_path, verb, kind):
    from mltoolkit.core.checkpoint import save_checkpoint

    path = tmp_path / "model.pt"
    if kind == "random":
        path.write_bytes(bytes(range(256)) * 8)
    else:
        technique = "transfer" if kind == "foreign" else "rl"
        save_checkpoint(path, technique=technique, config={"env": "CartPole-v1"}, state={"weights": torch.zeros(2)})
    fails(mltk("rl", verb, path, input="[0, 0, 0, 0]\n"), 3, str(path))
