"""Every option of every `train` refuses values outside its range: exit 3 naming the flag, nothing written.

The cases are generated from the config dataclasses' ranges (``core.params.param``), so an option added
to a config is covered here without touching this file. Each technique gets tiny, valid data: the only
thing wrong in a call is the one value under test.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path

import pytest

from mltoolkit.core.params import Spec, flag_of, spec_of
from mltoolkit.techniques import TECHNIQUES
from tests.conftest import fails


def _bad_numbers(spec: Spec, kind: type) -> list[float]:
    """Values just outside each bound, and the non-finite floats a finite field refuses."""
    step = 1 if kind is int else 0.5
    values = [spec.ge - step if spec.ge is not None else None, spec.gt, spec.lt]
    values.append(spec.le + step if spec.le is not None else None)
    if kind is float and spec.finite:
        values += [math.nan, math.inf]
    return [v for v in values if v is not None]


def _scalar(hint: typing.Any) -> typing.Any:
    """``int | None`` -> ``int``: an optional option takes the same values when typed."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _scalar(next(a for a in typing.get_args(hint) if a is not type(None)))
    return hint


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for technique in TECHNIQUES:
        cls = technique.config_class()
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            spec, hint = spec_of(field), _scalar(hints[field.name])
            if not spec.cli:
                continue
            if typing.get_origin(hint) is tuple and typing.get_args(hint)[0] in (int, float):
                kind = typing.get_args(hint)[0]
                values = [f"{kind(v)},{kind(v)}" for v in _bad_numbers(spec, kind)]
            elif hint in (int, float) and spec.parse is None:
                values = [str(hint(v)) for v in _bad_numbers(spec, hint)]
            else:
                continue
            cases += [(technique.name, flag_of(field), value) for value in values]
    return cases


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> dict[str, list[str]]:
    """The arguments that make each technique's train valid, but for the one option under test (typed after
    them, so it wins), and short: a value that slips through trains for seconds, not minutes."""
    import numpy as np
    import pandas as pd

    from mltoolkit.segment.synthetic import write_shapes
    from mltoolkit.transfer.synthetic import make_shapes_folder

    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"x1": rng.normal(size=60), "x2": rng.normal(size=60)})
    table["y"] = (table.x1 > 0).astype(int)
    table.to_csv(root / "table.csv", index=False)
    ratings = pd.DataFrame({"user": rng.integers(0, 20, 200), "item": rng.integers(0, 30, 200), "rating": 1})
    ratings.to_csv(root / "ratings.csv", index=False)
    return {
        "rl": ["--total-steps", "200", "--learning-starts", "100", "--eval-every", "100", "--eval-episodes", "1"],
        "transfer": ["--data", str(make_shapes_folder(root / "im", train=8, val=4, size=32, seed=0)), "--epochs", "1"],
        "boost": [str(root / "table.csv"), "--target", "y"],
        "segment": ["--data", str(write_shapes(root / "masks", train=4, val=2, size=32, seed=0)), "--epochs", "1"],
        "recommend": [str(root / "ratings.csv")],
    }


@pytest.mark.parametrize(("technique", "flag", "value"), _cases())
def test_out_of_range_option_is_exit_3_naming_it_and_writes_nothing(mltk, tmp_path, tiny_data, technique, flag, value):
    runs = tmp_path / "runs"
    fails(mltk(technique, "train", *tiny_data[technique], flag, value, "--runs-dir", runs), 3, flag)
    assert not any(Path(runs).rglob("config.json")), "a run directory was written for a refused option"


def test_every_technique_has_ranged_options():
    """A technique whose config declares no range at all has not been converted to ``param`` fields."""
    covered = {technique for technique, _, _ in _cases()}
    assert covered == {t.name for t in TECHNIQUES}
