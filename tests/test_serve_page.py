"""The page at ``GET /`` in a real headless browser: Debian's chromium driven by Playwright (nothing is
downloaded: ``executable_path`` is the system's chromium, which `make test` installs when missing). Each test
loads the page, submits an input as a person would, and waits for the answer to appear."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mltoolkit.serve.app import Settings, create_app
from tests.test_serve_units import StandInSegmenter, png, thread_server

CHROMIUM = Path("/usr/bin/chromium")
ANSWER_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (make test installs it)")


class StandInRows:
    """Records like boost's for table rows: one prediction per row (here the sum of its values)."""

    technique = "boost"
    run_dir: Path | None = None

    def predict(self, batch: list[dict[str, Any]], *, proba: bool = False) -> list[dict[str, Any]]:
        return [{"prediction": sum(row.values())} for row in batch]

    def metadata(self) -> dict[str, Any]:
        return {"technique": self.technique, "run": None, "features": [{"name": "a"}, {"name": "b"}]}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])  # CI is root
        yield browser
        browser.close()


def _open(browser: Any, port: int) -> Any:
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_selector("#submit", state="visible", timeout=ANSWER_TIMEOUT_MS)
    return page


def test_page_recommends_for_a_user(browser, mltk, tmp_path):
    from mltoolkit.recommend.synthetic import tiny_example
    from mltoolkit.serve.server import load_predictor
    from tests.conftest import ok

    example = tiny_example(tmp_path)
    trained = ok(mltk("recommend", "train", *example.train_args, "--runs-dir", tmp_path / "runs", "-q")).json()
    predictor, kind = load_predictor(trained["run_dir"], runs_dir=tmp_path / "runs", threads=1)
    with thread_server(create_app(predictor, kind, Settings(log=False))) as port:
        page = _open(browser, port)
        page.fill("#user", "u0")
        page.click("#submit")
        page.wait_for_selector("#answer:has-text('Recommended')", timeout=ANSWER_TIMEOUT_MS)
        expected = [r["item"] for r in predictor.predict(["u0"], strict=True)]
        assert page.text_content("#answer") == "Recommended: " + ", ".join(expected)
        page.fill("#user", "nobody-at-all")
        page.click("#submit")
        page.wait_for_selector("#answer.error", timeout=ANSWER_TIMEOUT_MS)
        assert "nobody-at-all" in page.text_content("#answer")


def test_page_shows_the_mask_overlay_of_a_chosen_image(browser, tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(png(32, 24))
    with thread_server(create_app(StandInSegmenter(), "image", Settings(log=False))) as port:
        page = _open(browser, port)
        page.set_input_files("#image", str(image))
        page.click("#submit")
        page.wait_for_selector("#overlay:not(.hidden)", timeout=ANSWER_TIMEOUT_MS)
        size = page.evaluate("() => [document.getElementById('overlay').naturalWidth, overlay.naturalHeight]")
        assert size == [32, 24]
        assert "Class fractions" in page.text_content("#answer")


def test_page_predicts_a_pasted_row(browser):
    with thread_server(create_app(StandInRows(), "rows", Settings(log=False))) as port:
        page = _open(browser, port)
        assert json.loads(page.input_value("#json")) == {"a": 0, "b": 0}, "the form offers the model's columns"
        page.fill("#json", '{"a": 2, "b": 3}')
        page.click("#submit")
        page.wait_for_selector("#answer:has-text('prediction')", timeout=ANSWER_TIMEOUT_MS)
        assert page.text_content("#answer") == "prediction: 5"
