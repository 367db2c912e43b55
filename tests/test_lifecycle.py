"""The run lifecycle every technique shares (core.runs): status, `latest`, one writer, kill -9, portability."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mltoolkit.core.errors import DataError
from mltoolkit.core.runs import Run, close_runs, create_run, resolve_resume, resolve_run, start_run
from tests.conftest import fails, ok


def _finished(runs_dir, name, status="completed"):
    run, _ = start_run("boost", {}, name=name, runs_dir=runs_dir, device="cpu", seed=0)
    run.set_status(status)
    return run


def test_a_failed_command_marks_its_run_failed_and_latest_passes_over_it(tmp_path):
    good = _finished(tmp_path, "good")
    bad, _ = start_run("boost", {}, name="bad", runs_dir=tmp_path, device="cpu", seed=0)
    os.utime(bad.path / "config.json", (time.time() + 5, time.time() + 5))  # started later
    close_runs("failed")  # what the root CLI does when the command raised
    assert bad.status == "failed" and good.status == "completed"
    assert resolve_run("latest", tmp_path, "boost") == good.path
    assert resolve_resume("latest", tmp_path, "boost") == bad.path


def test_a_killed_run_reads_interrupted_and_is_what_resume_latest_picks(tmp_path):
    run, _ = start_run("boost", {}, name="killed", runs_dir=tmp_path, device="cpu", seed=0)
    assert run.status == "running"  # this process holds the lock
    close_runs()  # the process is gone (kill -9): the lock is free, the summary still says running
    assert json.loads((run.path / "summary.json").read_text())["status"] == "running"
    assert run.status == "interrupted"
    assert resolve_resume("latest", tmp_path, "boost") == run.path
    with pytest.raises(DataError, match="no finished run"):
        resolve_run("latest", tmp_path, "boost")


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    run, _ = start_run("boost", {}, name="busy", runs_dir=tmp_path, device="cpu", seed=0)
    code = (
        "from mltoolkit.core.runs import start_run\n"
        f"start_run('boost', {{}}, name='x', runs_dir={str(tmp_path)!r}, resume={str(run.path)!r},"
        " device='cpu', seed=0)"
    )
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert second.returncode != 0 and f"in use by process {os.getpid()}" in second.stderr, second.stderr
    close_runs()
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_resume_clears_what_a_killed_save_left_and_falls_back_to_best(tmp_path):
    run = _finished(tmp_path, "r", status="interrupted")
    close_runs()
    (run.checkpoints / ".last.k1ll3d.pt").write_bytes(b"half a checkpoint")
    (run.checkpoints / "best.pt").write_bytes(b"x")
    again, resumed = start_run("boost", {}, name="r", runs_dir=tmp_path, resume="latest", device="cpu", seed=0)
    assert resumed and again.path == run.path
    assert not list(run.checkpoints.glob(".*"))
    assert again.resume_checkpoint() == run.checkpoints / "best.pt"
    (run.checkpoints / "best.pt").unlink()
    with pytest.raises(DataError, match="nothing to resume"):
        again.resume_checkpoint()


def test_a_copied_run_directory_keeps_its_technique(tmp_path):
    run = _finished(tmp_path / "runs", "model")
    copy = tmp_path / "handoff" / "churn"
    shutil.copytree(run.path, copy)
    assert resolve_run(str(copy), tmp_path / "runs", "boost") == copy
    with pytest.raises(DataError, match="is a 'boost' run, not 'rl'"):
        resolve_run(str(copy), tmp_path / "runs", "rl")


def test_runs_list_flags_a_damaged_summary_and_lists_the_others(mltk, tmp_path):
    _finished(tmp_path, "fine")
    broken = create_run("boost", "broken", tmp_path)
    broken.write_config({})
    (broken.path / "summary.json").write_bytes(b"\xff\xfe{\x00")  # UTF-16 garbage
    rows = ok(mltk("runs", "list", "--runs-dir", tmp_path, "--format", "json")).json()
    assert {r["name"]: r["status"] for r in rows} == {"broken": "unreadable", "fine": "completed"}
    fails(mltk("runs", "show", "boost/broken", "--runs-dir", tmp_path), 3, "summary.json")


def test_sigterm_saves_last_marks_the_run_interrupted_and_exits_143(tmp_path):
    """What `kill`, schedulers and containers send: handled like Ctrl-C (rl as the example)."""
    command = [sys.executable, "-m", "mltoolkit", "rl", "train", "--total-steps", "1000000", "--eval-every", "1000000",
               "--runs-dir", str(tmp_path), "--name", "term", "-q"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "rl" / "term" / "metrics.jsonl"
    deadline = time.time() + 120
    while not metrics.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    run = Run(tmp_path / "rl" / "term")
    assert run.status == "interrupted" and (run.checkpoints / "last.pt").is_file()
    assert "terminated" in stderr and "Traceback" not in stderr


def test_tensorboard_events_hold_the_metrics_rows(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = start_run("boost", {"tensorboard": True}, name="tb", runs_dir=tmp_path, device="cpu", seed=0)
    run.log({"round": 1, "valid": {"auc": 0.5}})
    run.log({"round": 2, "valid": {"auc": 0.75}, "phase": "train"})
    close_runs()
    events = EventAccumulator(str(run.path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("valid/auc")] == [(1, 0.5)]
    assert [(e.step, e.value) for e in events.Scalars("train/valid/auc")] == [(2, 0.75)]


def test_tensorboard_without_the_extra_is_exit_4_before_any_run_exists(tmp_path, monkeypatch):
    from mltoolkit.core.errors import ResourceError

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails as if not installed
    with pytest.raises(ResourceError, match=r"mltk\[tensorboard\]") as caught:
        start_run("boost", {"tensorboard": True}, name="tb", runs_dir=tmp_path, device="cpu", seed=0)
    assert caught.value.exit_code == 4 and not (tmp_path / "boost").exists()


def test_finish_writes_one_summary_shape_and_returns_it(tmp_path):
    run, _ = start_run("boost", {}, name="f", runs_dir=tmp_path, device="cpu", seed=0)
    for step in (1, 2, 3):
        run.log({"round": step})
    run.keep_metrics_until("round", 2)
    assert [r["round"] for r in run.read_metrics()] == [1, 2]
    result = run.finish("completed", {"metric": "auc", "value": 0.9}, best={"round": 2}, wall_time_s=1.23456, rounds=2)
    assert result.run_dir == run.path and result.status == "completed" and result.headline["value"] == 0.9
    summary = json.loads((run.path / "summary.json").read_text())
    assert result.summary == summary and summary["technique"] == "boost"
    assert summary["rounds"] == 2 and summary["wall_time_s"] == 1.235


def test_a_file_inside_another_techniques_run_is_refused(tmp_path):
    run = _finished(tmp_path, "model")
    (run.path / "model.txt").write_text("tree")
    assert resolve_run(str(run.path / "model.txt"), tmp_path, "boost") == run.path / "model.txt"
    with pytest.raises(DataError, match="belongs to a 'boost' run, not 'rl'"):
        resolve_run(str(run.path / "model.txt"), tmp_path, "rl")
