"""The Python examples of docs/python-api.md run as written (in an empty folder each), so the page cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"
BLOCKS = re.findall(r"^## (.+?)\n.*?```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S | re.M)


@pytest.mark.parametrize(("section", "code"), BLOCKS, ids=[section.split(":")[0] for section, _ in BLOCKS])
def test_python_api_example_runs(tmp_path, monkeypatch, capsys, section, code):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{PAGE.name}: {section}", "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out.strip(), "the example printed nothing"


def test_every_technique_has_an_example():
    from mltoolkit.techniques import NAMES

    assert [section.split(":")[0] for section, _ in BLOCKS] == list(NAMES)
