"""`mltk rl` learns from frames end to end on tiny budgets: an Atari game (train, evaluate with a GIF, predict
from a .npy file, resume with the replay memory) and CartPole through its rendering (``--pixels``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import args, fails, ok

pytest.importorskip("ale_py")
pytest.importorskip("torch")

# A few hundred steps, a small memory, one full game per evaluation: every part of the loop runs.
TINY_PONG = args(
    env="ALE/Pong-v5",
    total_steps=200,
    num_envs=2,
    learning_starts=100,
    batch_size=8,
    buffer_size=1000,
    train_freq=4,
    target_update_interval=50,
    exploration_steps=100,
    eval_every=200,
    eval_episodes=1,
    log_every=100,
)


def test_atari_trains_evaluates_predicts_and_resumes_with_its_frame_memory(mltk, tmp_path):
    runs = tmp_path / "runs"
    result = ok(mltk("rl", "train", *TINY_PONG, "--runs-dir", runs, "--name", "pong", "--quiet")).json()
    run = Path(result["run_dir"])
    assert result["steps"] == 200 and result["best_eval_return"] <= -15  # a raw Pong score, not a clipped one
    config = json.loads((run / "config.json").read_text())
    assert config["protocol"]["sticky_actions"] == 0.25 and config["protocol"]["frame_skip"] == 4
    assert (run / "replay" / "frames.npy").stat().st_size > 1000 * 84 * 84  # the frames live in the run's files

    gif = tmp_path / "pong.gif"
    scores = ok(mltk("rl", "evaluate", run, "--episodes", "1", "--gif", gif, "--format", "json")).json()
    assert scores["return_max"] <= -15 and scores["length_mean"] > 100
    from PIL import Image

    with Image.open(gif) as image:
        assert image.size == (160, 210)  # the game's own screen, not the 84x84 network input

    frames = tmp_path / "frames.npy"
    np.save(frames, np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8))
    records = ok(mltk("rl", "predict", run, frames, "--q-values")).jsonl()
    assert len(records) == 3 and all(0 <= r["action"] < 6 and len(r["q_values"]) == 6 for r in records)
    np.save(frames, np.zeros((3, 84, 84), dtype=np.uint8))
    fails(mltk("rl", "predict", run, frames), 3, "(N, 4, 84, 84)", "(3, 84, 84)")

    import torch

    replay = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]["replay"]
    assert set(replay) == {"directory", "capacity", "obs_shape", "num_envs", "size"}  # the frames stay in replay/
    resumed = ok(mltk("rl", "train", "--resume", run, "--total-steps", "300", "--runs-dir", runs, "--quiet")).json()
    assert resumed["steps"] == 300
    from mltoolkit.rl.frames import FrameReplay

    memory = FrameReplay.open(run / "replay", 1000, (4, 84, 84), 2)
    assert len(memory) > 250  # the first run's transitions and the resumed run's
    np.save(frames, np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8))
    check_exported_and_served(mltk, run, frames)


def check_exported_and_served(mltk, run: Path, frames: Path) -> None:
    """A network over frames leaves the toolkit like an MLP: its ONNX export takes (N, 4, 84, 84) and answers as
    the torch policy does, and `mltk serve` takes one stack of frames or a list of them."""
    from mltoolkit import rl
    from mltoolkit.serve.app import Settings, create_app
    from tests.test_serve import Client
    from tests.test_serve_units import thread_server

    native = ok(mltk("rl", "predict", run, frames)).jsonl()
    if importlib.util.find_spec("onnxruntime") is not None:
        ok(mltk("export", run, "--format", "onnx"))
        assert ok(mltk("rl", "predict", run, frames, "--backend", "onnxruntime")).jsonl() == native
    stacks = np.load(frames).tolist()
    with thread_server(create_app(rl.load(run), "observations", Settings(log=False))) as port:
        client = Client(port)
        one = client.request("POST", "/predict", json.dumps(stacks[0]).encode())
        assert one.status == 200 and one.json()["predictions"] == native[:1]
        many = client.request("POST", "/predict", json.dumps(stacks).encode())
        assert many.status == 200 and many.json()["predictions"] == native
        flat = client.request("POST", "/predict", json.dumps([0, 0, 0, 0]).encode())
        assert flat.status == 400 and b"stacked frames" in flat.data


def test_pixels_learn_cartpole_from_its_rendered_screen(mltk, tmp_path):
    run_args = args(
        env="CartPole-v1", total_steps=120, learning_starts=60, batch_size=8, buffer_size=300, eval_every=120,
        eval_episodes=1, confirm_episodes=0, log_every=60,
    )  # fmt: skip
    result = ok(mltk("rl", "train", *run_args, "--pixels", "--runs-dir", tmp_path, "--quiet")).json()
    assert result["steps"] == 120
    from mltoolkit import rl

    agent = rl.load(result["run_dir"])
    assert agent.metadata()["observation_shape"] == [4, 84, 84]
    assert agent.predict([np.zeros((4, 84, 84), dtype=np.uint8)])[0]["action"] in (0, 1)
    assert json.loads((Path(result["run_dir"]) / "config.json").read_text())["pixels"] is True


def test_a_frame_memory_too_big_for_this_machine_is_exit_3_with_the_capacity_that_fits(mltk, tmp_path):
    too_big = ["--env", "ALE/Pong-v5", "--buffer-size", "10000000000", "--runs-dir", tmp_path, "--quiet"]
    fails(mltk("rl", "train", *too_big), 3, "--buffer-size 10000000000", "--buffer-size ")
    assert not (tmp_path / "rl").exists()  # refused before a run directory or a file was made
