"""`mltk rl` end to end on tiny budgets: train, evaluate, predict, resume, seeds, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mltoolkit.techniques import RL
from tests.conftest import args, assert_run_dir, fails, ok

pytest.importorskip("gymnasium")
pytest.importorskip("torch")

# A few hundred steps with a small network: enough to exercise every part of the loop, fast.
TINY = args(
    total_steps=300,
    learning_starts=50,
    eval_every=150,
    eval_episodes=2,
    confirm_episodes=0,
    batch_size=16,
    hidden="16,16",
    log_every=100,
    buffer_size=1000,
)


def _train(mltk, runs: Path, *extra: str) -> dict:
    return ok(mltk("rl", "train", "--env", "CartPole-v1", "--runs-dir", runs, "--quiet", *TINY, *extra)).json()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run shared by the evaluate/predict tests."""
    from typer.testing import CliRunner

    from mltoolkit.cli import app

    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(
        app, ["rl", "train", "--runs-dir", str(runs), "--quiet", "--seed", "1", *TINY], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout.strip().splitlines()[-1])["run_dir"])


def test_train_writes_a_complete_run(trained):
    assert_run_dir(trained, RL.name)
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "plots/returns.png"):
        assert (trained / name).is_file(), name
    config = json.loads((trained / "config.json").read_text())
    assert config["env"] == "CartPole-v1" and config["preset"] == "CartPole-v1"
    assert config["total_steps"] == 300 and config["hidden"] == [16, 16]  # flags override the preset
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval_return_mean" in r]
    assert [r["step"] for r in evals] == [150, 300]
    assert {"loss", "epsilon", "q_mean", "episode_return"} <= set(
        next(r for r in records if r["step"] == 300 and "loss" in r)
    )
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["step"] == 300
    assert summary["headline"]["value"] == max(r["eval_return_mean"] for r in evals)


def test_evaluate_prints_returns_and_writes_eval_json_and_gif(mltk, trained, tmp_path):
    gif = tmp_path / "episode.gif"
    result = ok(mltk("rl", "evaluate", trained, "--episodes", "3", "--format", "json", "--gif", gif)).json()
    assert result["episodes"] == 3 and result["return_min"] <= result["return_mean"] <= result["return_max"]
    assert json.loads((trained / "eval.json").read_text())["return_mean"] == result["return_mean"]
    from PIL import Image

    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames > 1 and result["gif_frames"] > 1
    again = ok(mltk("rl", "evaluate", trained / "checkpoints" / "best.pt", "-n", "3", "--format", "json")).json()
    assert again["return_mean"] == result["return_mean"]  # deterministic


def test_predict_reads_stdin_and_names_the_bad_line(mltk, trained):
    lines = "[0.0, 0.1, 0.02, -0.3]\n\n[0.5, -1.0, 0.1, 1.2]\n"
    records = ok(mltk("rl", "predict", trained, "-", "--q-values", input=lines)).jsonl()
    assert len(records) == 2 and all(r["action"] in (0, 1) for r in records)
    assert all(r["action"] == int(np.argmax(r["q_values"])) for r in records)
    fails(mltk("rl", "predict", trained, input="[0, 0, 0, 0]\n[1, 2, 3]\n"), 3, "line 2", "4")
    fails(mltk("rl", "predict", trained, input="not json\n"), 3, "line 1")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("[0, 0, 0, 0]\n".encode("utf-16"), "UTF-8"),
        (bytes(range(256)) * 4, "UTF-8"),
        (b"[0, 0, 0]\n", "length 3"),
    ],
)
def test_predict_refuses_a_file_it_cannot_read_naming_it(mltk, trained, tmp_path, content, says):
    observations = tmp_path / "observations.jsonl"
    observations.write_bytes(content)
    result = fails(mltk("rl", "predict", trained, observations), 3, str(observations), says)
    assert result.stdout == ""


def test_predict_refuses_utf16_on_stdin(mltk, trained):
    fails(mltk("rl", "predict", trained, "-", input="[0, 0, 0, 0]\n".encode("utf-16")), 3, "<stdin>", "UTF-8")


def test_a_diverged_policy_is_refused_not_served_as_null_q_values(mltk, trained, tmp_path):
    import torch

    checkpoint = torch.load(trained / "checkpoints" / "best.pt", weights_only=True)
    next(iter(checkpoint["state"]["online"].values())).fill_(float("nan"))
    torch.save(checkpoint, tmp_path / "diverged.pt")
    fails(mltk("rl", "predict", tmp_path / "diverged.pt", "--q-values", input="[0, 0, 0, 0]\n"), 3, "NaN")


@pytest.mark.parametrize(("flag", "value"), [("--seed", "-1"), ("--episodes", "0")])
def test_evaluate_refuses_meaningless_values(mltk, trained, flag, value):
    fails(mltk("rl", "evaluate", trained, flag, value), 3, flag, value)


def test_evaluate_gif_into_a_directory_is_exit_3_and_writes_nothing(mltk, trained, tmp_path):
    eval_json = trained / "eval.json"
    eval_json.unlink(missing_ok=True)
    fails(mltk("rl", "evaluate", trained, "-n", "1", "--gif", tmp_path), 3, str(tmp_path), "directory")
    assert not eval_json.exists() and list(tmp_path.iterdir()) == []


def test_same_seed_same_metrics_and_different_seed_differs(mltk, tmp_path):
    first = Path(_train(mltk, tmp_path, "--seed", "7")["run_dir"])
    second = Path(_train(mltk, tmp_path, "--seed", "7")["run_dir"])
    other = Path(_train(mltk, tmp_path, "--seed", "8")["run_dir"])
    assert first != second
    assert (first / "metrics.jsonl").read_text() == (second / "metrics.jsonl").read_text()
    assert (first / "metrics.jsonl").read_text() != (other / "metrics.jsonl").read_text()


def test_resume_continues_with_the_replay_memory(mltk, tmp_path):
    import torch

    run = Path(_train(mltk, tmp_path, "--total-steps", "200", "--name", "resumable")["run_dir"])
    result = ok(mltk("rl", "train", "--resume", run, "--runs-dir", tmp_path, "--total-steps", "400", "--quiet")).json()
    assert Path(result["run_dir"]) == run and result["steps"] == 400
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]
    assert state["step"] == 400 and state["replay"]["size"] == 400  # 200 remembered + 200 new
    assert state["progress"]["episodes"] == result["episodes"]
    config = json.loads((run / "config.json").read_text())
    assert config["total_steps"] == 400 and config["hidden"] == [16, 16]  # kept from the run, override applied
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 400


def test_interrupt_saves_last_and_exits_130(mltk, tmp_path, monkeypatch):
    import mltoolkit.rl.training as train_module

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "play_episodes", interrupted)
    result = mltk("rl", "train", "--runs-dir", tmp_path, "--quiet", "--name", "stopped", *TINY)
    assert result.exit_code == 130
    run = tmp_path / "rl" / "stopped"
    assert (run / "checkpoints" / "last.pt").is_file()
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


def test_config_file_and_presets(mltk, tmp_path):
    config = tmp_path / "dqn.yaml"
    config.write_text("total_steps: 200\ntarget_update: soft\ntau: 0.01\nexploration: exponential\n")
    run = Path(_train(mltk, tmp_path, "--config", config, "--preset", "none", "--total-steps", "250")["run_dir"])
    resolved = json.loads((run / "config.json").read_text())
    assert resolved["total_steps"] == 250 and resolved["target_update"] == "soft" and resolved["preset"] is None
    presets = ok(mltk("rl", "presets", "--format", "json")).json()
    assert "CartPole-v1" in {p["preset"] for p in presets}
    fails(mltk("rl", "train", "--preset", "Nope-v0", "--runs-dir", tmp_path), 3, "Nope-v0")
    config.write_text("learning_rat: 0.1\n")
    fails(mltk("rl", "train", "--config", config, "--runs-dir", tmp_path), 3, "learning_rate")


def _image_env():
    import gymnasium as gym
    from gymnasium import spaces

    class ImageEnv(gym.Env):
        observation_space = spaces.Box(0, 255, (8, 8, 5), np.uint8)  # 5 channels: a layout DQN does not take
        action_space = spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, True, False, {}

    return ImageEnv()


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ("CartPol-v1", ["CartPol-v1", "CartPole-v1"]),
        ("Pendulum-v1", ["Pendulum-v1", "Discrete"]),
        ("MountainCarContinuous-v0", ["Discrete"]),
        ("MltkTestImage-v0", ["image", "(8, 8, 5)"]),
    ],
)
def test_environments_dqn_cannot_handle_exit_3(mltk, tmp_path, env, fragments):
    import gymnasium as gym

    if "MltkTestImage-v0" not in gym.registry:
        gym.register("MltkTestImage-v0", entry_point=_image_env)
    fails(mltk("rl", "train", "--env", env, "--runs-dir", tmp_path), 3, *fragments)
    assert not (tmp_path / "rl").exists() or not any((tmp_path / "rl").iterdir())  # no half-made run


def test_cuda_without_cuda_exits_4(mltk, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    fails(mltk("rl", "train", "--device", "cuda", "--runs-dir", tmp_path, *TINY), 4, "CUDA")


def test_bad_runs_and_options(mltk, tmp_path):
    fails(mltk("rl", "evaluate", tmp_path / "missing"), 3, "missing")
    fails(mltk("rl", "train", "--hidden", "64,x", "--runs-dir", tmp_path), 3, "--hidden")
    assert mltk("rl", "train", "--total-steps", "lots").exit_code == 2


def test_vector_environments_count_every_step(mltk, tmp_path):
    import torch

    result = _train(mltk, tmp_path, "--num-envs", "3", "--total-steps", "301")
    assert result["steps"] == 303  # whole vector steps: 101 x 3
    state = torch.load(Path(result["run_dir"]) / "checkpoints" / "last.pt", weights_only=True)["state"]
    assert state["replay"]["size"] == 303
    terminated = state["replay"]["terminated"]
    assert 0 < int(terminated.sum()) == result["episodes"]  # CartPole episodes this short all terminate
