"""`mltoolkit.rl`'s Python API (the technique contract): Config, train -> TrainResult, load -> Predictor whose
records are exactly what `mltk rl predict --format jsonl` prints, evaluate, tiny_example, and --resume from
best.pt when a kill hit the first save of last.pt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ok

pytest.importorskip("gymnasium")
torch = pytest.importorskip("torch")

from mltoolkit import rl  # noqa: E402
from mltoolkit.core.contract import Predictor, TrainResult  # noqa: E402
from mltoolkit.core.errors import DataError, UsageError  # noqa: E402
from mltoolkit.rl.synthetic import tiny_example  # noqa: E402

TINY = {
    "total_steps": 300, "learning_starts": 50, "eval_every": 150, "eval_episodes": 2, "confirm_episodes": 0,
    "batch_size": 16, "hidden": (16, 16), "log_every": 100, "buffer_size": 1000,
}  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainResult:
    return rl.train(rl.Config.for_env("CartPole-v1", **TINY), runs_dir=tmp_path_factory.mktemp("api"))


def test_contract_sequence_on_the_tiny_example(mltk, tmp_path):
    """train -> evaluate -> predict (CLI jsonl == load(run).predict) -> --resume 100 more steps -> the file alone."""
    example = tiny_example(tmp_path)
    runs = ["--runs-dir", tmp_path / "runs"]
    summary = ok(mltk("rl", "train", *example.train_args, *runs, "-q")).json()
    run = Path(summary["run_dir"])
    assert set(summary) == {"run_dir", "status", "best_eval_return", "best_step", "steps", "episodes", "wall_time_s"}
    metrics = ok(mltk("rl", "evaluate", run, *example.evaluate_args, *runs, "--format", "json")).json()
    assert metrics["episodes"] == 2 and metrics["env"] == "CartPole-v1"
    printed = ok(mltk("rl", "predict", run, *example.predict_args, *runs, "--format", "jsonl")).jsonl()
    agent = rl.load(run)
    assert isinstance(agent, Predictor) and agent.run_dir == run and agent.technique == "rl"
    assert printed == agent.predict(example.records, q_values=True) and len(printed) == len(example.records)
    resumed = ok(mltk("rl", "train", "--resume", run, *example.more_args, *runs, "-q")).json()
    assert resumed["run_dir"] == str(run) and resumed["steps"] == 400
    again = rl.load(run).predict(example.records, q_values=True)
    alone = tmp_path / "elsewhere" / "best.pt"
    alone.parent.mkdir()
    shutil.copy(run / "checkpoints" / "best.pt", alone)
    shutil.rmtree(run)
    copy = rl.load(alone)
    assert copy.run_dir is None and copy.metadata()["run"] is None
    assert copy.predict(example.records, q_values=True) == again


def test_train_returns_the_summary_as_a_train_result(trained):
    assert trained.status == "completed" and trained.headline["metric"] == "best_eval_return"
    assert trained.summary == json.loads((trained.run_dir / "summary.json").read_text())
    assert trained.summary["final"]["step"] == 300
    assert trained.summary["best"]["eval_return"] == trained.headline["value"]
    config = json.loads((trained.run_dir / "config.json").read_text())
    assert config["preset"] == "CartPole-v1" and config["train_freq"] == 256  # for_env: the preset under the fields
    assert config["hidden"] == [16, 16] and config["tensorboard"] is False


def test_a_config_built_directly_is_trained_as_it_is_and_checked(tmp_path):
    with pytest.raises(DataError, match="--gamma must be"):
        rl.train(rl.Config(gamma=2.0), runs_dir=tmp_path)
    with pytest.raises(DataError, match="--learning-starts"):
        rl.train(rl.Config(total_steps=10, learning_starts=10), runs_dir=tmp_path)
    assert not (tmp_path / "rl").exists()
    assert rl.Config().preset is None and rl.Config().train_freq == 4  # the built-in defaults, no preset


def test_predict_takes_lists_arrays_and_obs_records_in_order(trained):
    agent = rl.load(trained.run_dir)
    observations = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    expected = agent.predict(observations.tolist(), q_values=True)
    assert agent.predict(observations, q_values=True) == expected  # a 2-D array: one record per row
    assert agent.predict(list(observations), q_values=True) == expected
    assert agent.predict([{"obs": o} for o in observations.tolist()], q_values=True) == expected
    assert [r["action"] for r in agent.predict(observations)] == [r["action"] for r in expected]
    assert all(r["action"] == int(np.argmax(r["q_values"])) and len(r["q_values"]) == 2 for r in expected)
    assert agent.predict([]) == []


def test_a_record_is_the_same_alone_in_a_batch_and_from_stdin(mltk, trained):
    """float64 Q-values: in float32 the 6th printed decimal changed with the batch around a row."""
    observations = (np.random.default_rng(1).normal(size=(200, 4)) * 2).tolist()
    batched = rl.load(trained.run_dir).predict(observations, q_values=True)
    alone = [rl.load(trained.run_dir).predict([o], q_values=True)[0] for o in observations[:20]]
    assert alone == batched[:20]
    lines = "".join(json.dumps(o) + "\n" for o in observations)
    assert ok(mltk("rl", "predict", trained.run_dir, "--q-values", input=lines)).jsonl() == batched


@pytest.mark.parametrize(
    ("batch", "says"),
    [
        ("0,0,0,0", "a list of observations"),
        ({"obs": [0, 0, 0, 0]}, "a list of observations"),
        ([0.0, 0.1, 0.0, 0.2], "record 0: expected an array of 4 numbers"),
        ([[0, 0, 0, 0], [0, 0, 0]], "record 1: observation of length 3"),
        ([[0, 0, 0, 0], ["a", 0, 0, 0]], "record 1: expected an array of 4 numbers"),
        ([[0, 0, float("nan"), 0]], "record 0: observation holds NaN"),
        ([[True, 0, 0, 0]], "record 0"),
    ],
)
def test_a_bad_record_is_one_line_naming_it(trained, batch, says):
    with pytest.raises(DataError, match=says) as caught:
        rl.load(trained.run_dir).predict(batch)
    assert "\n" not in str(caught.value)


def test_metadata_names_what_a_client_needs(trained):
    meta = rl.load(trained.run_dir).metadata()
    assert {"technique", "run", "mltk_version", "env", "observation_shape", "n_actions", "input"} <= set(meta)
    assert (meta["technique"], meta["run"], meta["env"]) == ("rl", trained.run_dir.name, "CartPole-v1")
    assert (meta["observation_shape"], meta["obs_dim"], meta["n_actions"]) == ([4], 4, 2)
    json.dumps(meta)  # JSON-ready


def test_evaluate_takes_a_run_reference_and_no_data(trained):
    result = rl.evaluate(trained.run_dir.name, runs_dir=trained.run_dir.parent.parent, episodes=2)
    assert result["episodes"] == 2 and result["return_min"] <= result["return_max"]
    with pytest.raises(UsageError, match="no data"):
        rl.evaluate(trained.run_dir, "CartPole-v1")


def test_resume_from_best_pt_when_last_pt_is_missing(mltk, tmp_path):
    """A kill during the first save of last.pt leaves best.pt alone: the networks and the step go on."""
    example = tiny_example(tmp_path)
    run = Path(ok(mltk("rl", "train", *example.train_args, "--runs-dir", tmp_path, "-q")).json()["run_dir"])
    (run / "checkpoints" / "last.pt").unlink()
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    result = mltk("rl", "train", "--resume", run, "--total-steps", "400", "--runs-dir", tmp_path, "-q")
    assert ok(result).json()["steps"] == 400
    warning = [line for line in result.stderr.splitlines() if "best.pt" in line]
    assert len(warning) == 1 and "empty replay memory" in warning[0] and f"step {best['state']['step']}" in warning[0]
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]
    assert state["replay"]["size"] == 400 - best["state"]["step"]  # only what was played after the resume
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 400


def test_resume_with_no_checkpoint_at_all_says_so(mltk, tmp_path):
    example = tiny_example(tmp_path)
    run = Path(ok(mltk("rl", "train", *example.train_args, "--runs-dir", tmp_path, "-q")).json()["run_dir"])
    for name in ("last.pt", "best.pt"):
        (run / "checkpoints" / name).unlink()
    result = mltk("rl", "train", "--resume", run, "--runs-dir", tmp_path, "-q")
    assert result.exit_code == 3 and "nothing to resume" in result.stderr


def test_train_tensorboard_writes_event_files(mltk, tmp_path):
    pytest.importorskip("tensorboard")
    example = tiny_example(tmp_path)
    summary = ok(mltk("rl", "train", *example.train_args, "--tensorboard", "--runs-dir", tmp_path, "-q")).json()
    assert list((Path(summary["run_dir"]) / "tb").glob("events.out.tfevents.*"))


def test_the_docs_python_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "docs" / "rl.md").read_text()
    section = text[text.index("## Python API") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", section.index("```python"))]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/rl.md", "exec"), {})
    assert (tmp_path / "runs" / "rl" / "cartpole" / "eval.json").is_file()
