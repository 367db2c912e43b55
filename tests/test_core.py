"""Unit tests of mltoolkit.core: atomic writes, runs, checkpoints, devices, tables, config, weights."""

from __future__ import annotations

import io
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mltoolkit.core import io as mio
from mltoolkit.core.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from mltoolkit.core.config import build_config, load_config_file
from mltoolkit.core.device import resolve_device, resolve_threads, seed_everything
from mltoolkit.core.errors import DataError, ResourceError
from mltoolkit.core.runs import Run, create_run, resolve_run, resolve_run_dir, run_name, start_run
from tests.conftest import fails, ok

# -- atomic writes -----------------------------------------------------------------------------


def test_atomic_write_keeps_old_file_when_writing_fails_midway(tmp_path):
    target = tmp_path / "model.txt"
    target.write_text("good model")
    with pytest.raises(RuntimeError):
        with mio.atomic_write(target) as handle:
            handle.write("half a mod")
            raise RuntimeError("disk full")
    assert target.read_text() == "good model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.txt"], "temporary file left behind"


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "plot.png"
    with mio.atomic_path(target) as tmp:
        tmp.write_bytes(b"png")
        assert not target.exists()
    assert target.read_bytes() == b"png"
    assert target.stat().st_mode & 0o044, "outputs must be readable like a plain open() would make them"


# -- runs ------------------------------------------------------------------------------------


def test_run_names_increment_and_never_overwrite(tmp_path):
    names = [create_run("boost", "exp", tmp_path).name for _ in range(3)]
    assert names == ["exp", "exp-2", "exp-3"]
    assert (tmp_path / "boost" / "exp" / "checkpoints").is_dir()


def test_bad_run_name(tmp_path):
    with pytest.raises(DataError, match="run name"):
        create_run("boost", "../escape", tmp_path)


def test_default_run_names_hold_only_what_a_run_name_may(tmp_path):
    assert run_name("als", "<stdin>") == "als-stdin" and run_name("ALE/Pong-v5") == "ALE-Pong-v5"
    assert run_name("resnet18", "my ants & bees", "") == "resnet18-my-ants-bees" and run_name("", "...") == "run"
    assert create_run("transfer", run_name("m", "é data"), tmp_path).name == "m-data"


def test_start_run_writes_config_env_and_resolves_references(tmp_path):
    run, resumed = start_run("rl", {"lr": 0.1}, name="cart", runs_dir=tmp_path, device="cpu", seed=3)
    assert not resumed
    assert json.loads((run.path / "config.json").read_text()) == {"lr": 0.1}
    env = json.loads((run.path / "env.json").read_text())
    assert env["seed"] == 3 and env["device"] == "cpu" and "torch" in env["versions"]
    run.log({"step": 1, "return": 10.0})
    run.log({"step": 2, "return": 20.0})
    assert [r["step"] for r in run.read_metrics()] == [1, 2]
    checkpoint = run.checkpoints / "best.pt"
    checkpoint.write_bytes(b"x")
    assert resolve_run("rl/cart", tmp_path) == run.path
    assert resolve_run("cart", tmp_path, "rl") == run.path
    assert resolve_run(str(checkpoint), tmp_path) == checkpoint
    assert resolve_run_dir(str(checkpoint), tmp_path) == run.path
    with pytest.raises(DataError, match="no finished run"):
        resolve_run("latest", tmp_path, "rl")  # still running: not what evaluate/predict should pick
    run.set_status("completed")
    assert resolve_run("latest", tmp_path, "rl") == run.path
    with pytest.raises(DataError, match="not 'boost'"):
        resolve_run(str(run.path), tmp_path, "boost")
    again, resumed = start_run("rl", {"lr": 0.2}, name="x", runs_dir=tmp_path, resume="rl/cart", device="cpu", seed=3)
    assert resumed and again.path == run.path and again.read_config() == {"lr": 0.2}


def test_a_run_named_like_its_technique_resolves_to_the_run(tmp_path):
    run, _ = start_run("rl", {}, name="rl", runs_dir=tmp_path, device="cpu", seed=0)
    assert resolve_run("rl", tmp_path, "rl") == run.path  # not tmp_path/rl, the technique's folder
    with pytest.raises(DataError, match="not a run directory"):
        resolve_run(str(tmp_path / "rl"), tmp_path)


def test_latest_without_runs(tmp_path):
    with pytest.raises(DataError, match="no runs"):
        resolve_run("latest", tmp_path, "segment")


def test_runs_list_and_show(mltk, tmp_path):
    run = create_run("boost", "demo", tmp_path)
    run.write_config({})
    run.write_env(device="cpu", seed=0)
    run.write_summary({"status": "completed", "headline": {"metric": "auc", "value": 0.9}})
    rows = ok(mltk("runs", "list", "--runs-dir", tmp_path, "--format", "json")).json()
    assert rows[0]["technique"] == "boost" and rows[0]["value"] == 0.9 and rows[0]["status"] == "completed"
    shown = ok(mltk("runs", "show", "boost/demo", "--runs-dir", tmp_path, "--format", "json")).json()
    assert shown["headline"]["metric"] == "auc"
    fails(mltk("runs", "show", str(tmp_path), "--runs-dir", tmp_path), 3, "not a run directory")


# -- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_round_trip_and_rejections(tmp_path):
    import torch

    path = tmp_path / "best.pt"
    save_checkpoint(path, technique="rl", config={"a": 1}, state={"w": torch.ones(2)}, metrics={"r": 1.0})
    payload = load_checkpoint(path, "rl")
    assert payload["format_version"] == FORMAT_VERSION and torch.equal(payload["state"]["w"], torch.ones(2))
    with pytest.raises(DataError, match="not 'transfer'"):
        load_checkpoint(path, "transfer")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="corrupt.pt"):
        load_checkpoint(corrupt)
    newer = tmp_path / "newer.pt"
    torch.save({"format_version": FORMAT_VERSION + 1, "state": {}}, newer)
    with pytest.raises(DataError, match="newer"):
        load_checkpoint(newer)


# -- device, seeds, threads -------------------------------------------------------------------


def test_bad_device_string():
    with pytest.raises(DataError, match="unknown device"):
        resolve_device("tpu")


def test_device_resolution():
    import torch

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ResourceError, match="CUDA is not available here; use --device cpu or auto"):
            resolve_device("cuda")
        assert resolve_device("auto").type in ("cpu", "mps")


def test_seed_everything_repeats_draws():
    import torch

    seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(7)
    assert first == (random.random(), np.random.rand(), torch.rand(1).item())


def test_stop_workers_ends_persistent_workers_at_once():
    """Training stops its loaders' workers itself: left to the interpreter's exit, torch waits 5 s per worker."""
    import multiprocessing
    from types import SimpleNamespace

    import torch

    from mltoolkit.core.training import data_loader, stop_workers

    others = set(multiprocessing.active_children())  # another test's processes, if any
    loader = data_loader(list(range(8)), batch_size=4, workers=2, device=torch.device("cpu"))
    for _ in range(2):  # two epochs on the same two workers
        assert [batch.tolist() for batch in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    workers = [process for process in multiprocessing.active_children() if process not in others]
    assert len(workers) == 2
    stop_workers(SimpleNamespace(loader=loader))  # as a wrapper (transfer's Decoded) holds it
    assert not any(worker.is_alive() for worker in workers)
    assert [batch.tolist() for batch in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]  # usable again: fresh workers
    stop_workers(loader)


def test_threads():
    cores = resolve_threads(None)
    assert cores >= 1 and resolve_threads(1) == 1 and resolve_threads(100_000) == cores  # capped at the cores
    with pytest.raises(DataError):
        resolve_threads(-1)


# -- tables ----------------------------------------------------------------------------------


def test_sniffing():
    assert mio.sniff_text_table("196\t242\t3\t881250949\n186\t302\t3\t891717742\n") == ("\t", False)
    assert mio.sniff_text_table("user,item,rating\nu1,i1,5\n") == (",", True)
    assert mio.sniff_text_table("a;b\n1;2\n") == (";", True)


def test_table_round_trip_through_stdin_and_stdout(monkeypatch, capsys):
    text = "user,item,rating\nalice,apple,5.0\nbob,pear,3.5\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    frame = mio.read_table("-")
    assert list(frame.columns) == ["user", "item", "rating"] and frame["rating"].tolist() == [5.0, 3.5]
    mio.write_table(frame, "-", "csv")
    assert capsys.readouterr().out == text
    with mio.RecordWriter(None, "jsonl") as writer:
        writer.write({"user": "alice", "score": np.float32(0.5)})
    assert json.loads(capsys.readouterr().out) == {"user": "alice", "score": 0.5}


def test_read_table_formats(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    (tmp_path / "t.tsv").write_text("1\tx\n2\ty\n")
    assert mio.read_table(tmp_path / "t.parquet").equals(frame)
    assert mio.read_table(tmp_path / "t.jsonl")["b"].tolist() == ["x", "y"]
    assert list(mio.read_table(tmp_path / "t.tsv", columns=["a", "b"]).columns) == ["a", "b"]
    out = tmp_path / "out.csv"
    mio.write_table(frame, out, "csv")
    assert mio.read_table(out)["a"].tolist() == [1, 2]


@pytest.mark.parametrize(
    "content, message",
    [(None, "file not found"), ("", "empty input"), ("a,b\n", "no rows")],
)
def test_read_table_errors_name_the_path(tmp_path, content, message):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as error:
        mio.read_table(path)
    assert str(path) in str(error.value)


def test_iter_lines_skips_blanks(tmp_path):
    path = tmp_path / "obs.jsonl"
    path.write_text("[1]\n\n[2]\n")
    assert list(mio.iter_lines(path)) == [(1, "[1]"), (3, "[2]")]


# -- config ----------------------------------------------------------------------------------


@dataclass
class _Config:
    lr: float = 0.1
    layers: tuple[int, ...] = (64, 64)
    schedule: str = "step"
    seed: int | None = None


def test_config_layers_later_wins_and_none_is_not_typed(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: 1\nlayers: [8]\n")
    (tmp_path / "c.toml").write_text('schedule = "cosine"\n')
    config = build_config(
        _Config, {"seed": 1}, load_config_file(tmp_path / "c.yaml"), load_config_file(tmp_path / "c.toml"), {"lr": None}
    )
    assert config == _Config(lr=1.0, layers=(8,), schedule="cosine", seed=1)


def test_config_errors(tmp_path):
    with pytest.raises(DataError, match="did you mean lr"):
        build_config(_Config, {"lrr": 1})
    with pytest.raises(DataError, match="expected float"):
        build_config(_Config, {"lr": "fast"})
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(DataError, match="bad.json"):
        load_config_file(tmp_path / "bad.json")


# -- pretrained weights and training helpers --------------------------------------------------


def test_weights_from_file_and_failed_download(tmp_path, monkeypatch):
    import torch
    import torchvision

    from mltoolkit.core import weights

    source = torchvision.models.get_model("mobilenet_v3_small", weights=None)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    parsed = weights.parse_weights("mobilenet_v3_small", str(path))
    target = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=3)
    weights.load_pretrained(target, weights.load_state_dict(parsed), str(path))
    assert torch.equal(target.features[0][0].weight, source.features[0][0].weight)
    member = weights.parse_weights("mobilenet_v3_small", "DEFAULT")
    assert weights.reference_weights("mobilenet_v3_small", Path(path)) == member

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(type(member), "get_state_dict", offline)
    with pytest.raises(ResourceError, match="--weights PATH.pth"):
        weights.load_state_dict(member)
    with pytest.raises(DataError, match="unknown weights"):
        weights.parse_weights("mobilenet_v3_small", "BEST")


def test_rng_state_round_trip_and_early_stopping(tmp_path):
    import torch

    from mltoolkit.core.training import EarlyStopping, make_scheduler, rng_state, set_rng_state

    path = tmp_path / "rng.pt"
    torch.save(rng_state(), path)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(path, weights_only=True))
    assert first == (random.random(), np.random.rand(), torch.rand(1).item())

    stopper = EarlyStopping(patience=2, mode="max")
    assert [stopper.improved(v) for v in (0.5, 0.6, 0.55, 0.58)] == [True, True, False, False]
    assert stopper.should_stop and stopper.best == 0.6

    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    schedule = make_scheduler("step", optimizer, epochs=4, steps_per_epoch=2, step_size=2, gamma=0.5)
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == [1.0] * 4 + [0.5] * 4
    with pytest.raises(DataError):
        make_scheduler("exp", optimizer, epochs=1, steps_per_epoch=1)


def test_run_is_a_value():
    assert Run(Path("runs/rl/a")).technique == "rl"


def test_progress_keeps_the_last_numbers_between_updates(monkeypatch):
    """Loops read their metrics rarely (``.item()`` syncs CUDA); the bar must not blank them in between."""
    import io

    from rich.console import Console

    from mltoolkit.core import console

    buffer = io.StringIO()
    monkeypatch.setattr(console, "err_console", Console(file=buffer, force_terminal=True, width=150))
    monkeypatch.setattr(console, "_animated", lambda: True)
    with console.progress(3, "epoch") as bar:
        bar.advance(1, loss=0.5)
        bar.advance(1)
        bar.advance(1)
    assert "loss 0.5" in buffer.getvalue().rsplit("\r", 1)[-1]


def test_torchrun_shares_cores_and_refuses_devices_without_a_backend(monkeypatch):
    import torch

    from mltoolkit.core import device as core_device
    from mltoolkit.core.distributed import World, cores_per_process, join
    from mltoolkit.core.errors import UsageError

    monkeypatch.setattr(core_device, "available_cores", lambda: 16)
    assert cores_per_process(World(size=4, local_size=4)) == 4 and cores_per_process(World(size=32, local_size=32)) == 1
    assert join(World(), torch.device("mps")).type == "mps"  # one process: nothing to join
    with pytest.raises(UsageError, match="not mps"):
        join(World(rank=1, size=2, local_rank=1, local_size=2), torch.device("mps"))


def test_an_allocation_past_available_memory_is_refused_naming_what_fits(monkeypatch):
    from mltoolkit.core import device

    monkeypatch.setattr(device, "available_memory", lambda: 2**30)
    device.check_memory(2**29, "--buffer-size 10", lambda free: "x")  # fits: nothing happens
    with pytest.raises(DataError, match=r"--buffer-size 99 needs 2.0 GiB but 1.0 GiB .* at most --buffer-size 49"):
        device.check_memory(2**31, "--buffer-size 99", lambda free: f"--buffer-size {free * 49 // 2**30}")


def test_an_output_path_that_is_a_directory_or_under_a_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    for bad, says in ((tmp_path, "is a directory"), (tmp_path / "file.txt" / "out.csv", "a file, not a folder")):
        with pytest.raises(DataError, match=says):
            mio.RecordWriter(bad)
        with pytest.raises(DataError, match=says), mio.atomic_write(bad):
            pass
