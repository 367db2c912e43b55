"""The contract every technique in the registry keeps (DESIGN.md, core/contract.py), checked the way
scikit-learn's ``parametrize_with_checks`` checks estimators: one parametrized test per behaviour, so a
sixth technique is covered by adding its registry entry, and a change that breaks the shape fails here.

For each technique, on the tiny data of its ``synthetic.tiny_example``: train -> evaluate -> predict (the
CLI and the Python API agree on the same inputs) -> resume for one more epoch/round/step -> reload from
the run directory moved elsewhere and from the checkpoint file alone.
"""

from __future__ import annotations

import importlib
import shutil

import pytest

from mltoolkit.core.contract import Predictor, TrainResult
from mltoolkit.techniques import TECHNIQUES
from tests.conftest import assert_run_dir, fails, invoke, ok

NAMES = [t.name for t in TECHNIQUES]
TRAIN_OPTIONS = {"--config", "--device", "--seed", "--runs-dir", "--name", "--resume", "--quiet", "--tensorboard"}


def _command(technique: str, verb: str):
    from typer.main import get_command

    from mltoolkit.cli import app

    return get_command(app).commands[technique].commands.get(verb)


def _api(name: str):
    return importlib.import_module(f"mltoolkit.{name}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each technique's tiny run, trained once through the CLI and shared by the tests below."""
    runs: dict[str, tuple] = {}

    def get(name: str):
        if name not in runs:
            folder = tmp_path_factory.mktemp(name)
            example = importlib.import_module(f"mltoolkit.{name}.synthetic").tiny_example(folder)
            out = ok(invoke(name, "train", *example.train_args, "--runs-dir", folder / "runs", "-q")).json()
            runs[name] = (example, folder, out)
        return runs[name]

    return get


@pytest.mark.parametrize("technique", NAMES)
def test_trio_and_train_options(technique):
    for verb in ("train", "evaluate", "predict"):
        assert _command(technique, verb) is not None, f"mltk {technique} {verb} is missing"
    train_options = {name for param in _command(technique, "train").params for name in param.opts}
    assert TRAIN_OPTIONS <= train_options, f"mltk {technique} train lacks {TRAIN_OPTIONS - train_options}"
    for verb in ("evaluate", "predict"):
        assert "--runs-dir" in {name for param in _command(technique, verb).params for name in param.opts}


@pytest.mark.parametrize("technique", NAMES)
def test_python_api_has_the_contract_shape(technique):
    api = _api(technique)
    for name in ("Config", "train", "load", "evaluate"):
        assert hasattr(api, name), f"mltoolkit.{technique} lacks {name}"
    from mltoolkit.techniques import get

    assert api.Config is get(technique).config_class()


@pytest.mark.parametrize("verb", ["evaluate", "predict"])
@pytest.mark.parametrize("technique", NAMES)
def test_unknown_run_is_exit_3_naming_it(mltk, tmp_path, technique, verb, trained):
    example, _, _ = trained(technique)
    extra = example.predict_args if verb == "predict" else example.evaluate_args
    for run, says in (("no-such-run", "no-such-run"), ("latest", "no runs under")):
        fails(mltk(technique, verb, run, *extra, "--runs-dir", tmp_path / "runs", input=""), 3, says)


@pytest.mark.parametrize("technique", [t for t in NAMES if t != "rl"])  # rl trains on an environment, not data
def test_train_without_data_is_a_usage_error(mltk, tmp_path, technique):
    fails(mltk(technique, "train", "--runs-dir", tmp_path / "runs"), 2)


@pytest.mark.parametrize("technique", NAMES)
def test_train_evaluate_predict_agree_with_the_python_api(mltk, technique, trained):
    example, _, out = trained(technique)
    run_dir = out["run_dir"]
    assert_run_dir(run_dir, technique)
    metrics = ok(mltk(technique, "evaluate", run_dir, *example.evaluate_args, "--format", "json")).json()
    assert isinstance(metrics, dict) and metrics

    cli = ok(mltk(technique, "predict", run_dir, *example.predict_args, "--format", "jsonl")).jsonl()
    predictor = _api(technique).load(run_dir)
    assert isinstance(predictor, Predictor) and predictor.technique == technique
    assert _comparable(predictor.predict(example.records)) == _comparable(cli, like=predictor.predict(example.records))
    assert predictor.metadata()["technique"] == technique


@pytest.mark.parametrize("technique", NAMES)
def test_resume_continues_the_same_run_and_a_moved_run_still_loads(mltk, tmp_path, technique, trained):
    example, _, out = trained(technique)
    moved = tmp_path / "elsewhere" / "handoff"
    shutil.copytree(out["run_dir"], moved)
    before = len((moved / "metrics.jsonl").read_text().splitlines())
    resumed = ok(mltk(technique, "train", "--resume", moved, *example.more_args, "--runs-dir", tmp_path, "-q")).json()
    assert resumed["run_dir"] == str(moved)
    assert len((moved / "metrics.jsonl").read_text().splitlines()) > before, "the resumed run logged nothing more"
    result = TrainResult.from_summary(moved, assert_run_dir(moved, technique))

    predictor = _api(technique).load(str(moved))
    assert len(predictor.predict(example.records)) >= len(example.records)
    checkpoint = result.summary.get("best_checkpoint")
    if checkpoint and checkpoint.endswith((".pt", ".npz", ".txt")):  # a self-contained file: loads without its run
        alone = tmp_path / "alone" / checkpoint.rsplit("/", 1)[-1]
        alone.parent.mkdir()
        shutil.copy(moved / checkpoint, alone)
        assert _comparable(_api(technique).load(str(alone)).predict(example.records)) == _comparable(
            predictor.predict(example.records)
        )


def _comparable(records: list[dict], like: list[dict] | None = None) -> list[dict]:
    """The JSON-ready fields of each record (arrays, such as segment's masks, are files on the CLI); with
    ``like``, only the fields the Python API also returns."""
    keys = [{k for k, v in r.items() if not hasattr(v, "shape")} for r in (like or records)]
    return [{k: r.get(k) for k in sorted(ks)} for r, ks in zip(records, keys, strict=True)]
