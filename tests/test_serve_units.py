"""The serve app's parts without a trained model: the micro-batcher, image requests (multipart, raw body,
base64 JSON) and their mask PNG and overlay, and the 500 path, with stand-in Predictors served by uvicorn
on a thread (a real socket, real HTTP)."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mltoolkit.core.errors import DataError
from mltoolkit.serve.app import Settings, create_app
from mltoolkit.serve.batcher import MicroBatcher
from tests.test_serve import Client, assert_error, free_port

TOKEN = "units-token"


class StandInSegmenter:
    """Records like segment's: class fractions and a mask (left half class 1) the size of the image."""

    technique = "segment"
    run_dir: Path | None = None

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, batch: list[Any], *, threshold: float = 0.5, overlay: bool = False) -> list[dict[str, Any]]:
        from mltoolkit.segment.visual import overlay as paint

        self.batches.append(len(batch))
        time.sleep(0.002)  # a forward pass's cost: enough for the batcher to hand calls to its thread and batch
        records = []
        for data in batch:
            with Image.open(io.BytesIO(data)) as image:
                mask = np.zeros((image.height, image.width), np.uint8)
                mask[:, : image.width // 2] = 1
                painted = {"overlay": paint(image, mask, [(0, 0, 0), (255, 0, 0)])} if overlay else {}
            records.append({"fractions": {"background": 0.5, "thing": 0.5}, "mask": mask, **painted})
        return records

    def metadata(self) -> dict[str, Any]:
        return {"technique": self.technique, "run": None, "classes": ["background", "thing"]}


class Broken(StandInSegmenter):
    def predict(self, batch: list[Any], **options: Any) -> list[dict[str, Any]]:
        raise RuntimeError("a bug in the model code")


def png(width: int = 6, height: int = 4, colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def thread_server(app: Any) -> Iterator[int]:
    """``app`` on uvicorn in a thread, on a free loopback port, stopped on exit (bounded waits both ways)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start within 20 s"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.fixture(scope="module")
def segmenter() -> Iterator[tuple[StandInSegmenter, Client]]:
    model = StandInSegmenter()
    settings = Settings(max_body_mb=1, token=TOKEN, log=False, max_wait_ms=20)
    with thread_server(create_app(model, "image", settings)) as port:
        yield model, Client(port, TOKEN)


def test_multipart_raw_and_base64_images_answer_alike(segmenter):
    _, client = segmenter
    image = png()
    uploaded = client.post_files("/predict", [image, png(colour=(0, 0, 255))]).json()["predictions"]
    raw = client.request("POST", "/predict", image, headers={"Content-Type": "image/png"}).json()["predictions"]
    encoded = client.post_json("/predict", {"image": base64.b64encode(image).decode()}).json()["predictions"]
    assert len(uploaded) == 2 and uploaded[0] == raw[0] == encoded[0]
    assert raw[0]["fractions"] == {"background": 0.5, "thing": 0.5}
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(raw[0]["mask"]))))
    assert mask.shape == (4, 6) and mask[:, :3].min() == 1 and mask[:, 3:].max() == 0


def test_an_overlay_travels_as_an_rgb_png(segmenter):
    _, client = segmenter
    reply = client.request("POST", "/predict?overlay=true", png(), headers={"Content-Type": "image/png"})
    record = reply.json()["predictions"][0]
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(record["overlay"]))))
    assert overlay.shape == (4, 6, 3)
    assert (overlay[:, 3:] == (200, 10, 10)).all(), "background pixels keep the image's colour"
    assert (overlay[:, :3] != (200, 10, 10)).any(axis=-1).all(), "class pixels are painted"


def test_image_refusals(segmenter):
    _, client = segmenter
    assert_error(client.post_files("/predict", [b"plain text"]), 400, says="not an image")
    assert_error(client.post_json("/predict", {"image": "***"}), 400, says="base64")
    assert_error(client.post_json("/predict", {"images": []}), 400, says="base64")
    assert_error(client.post_json("/predict", {"image": base64.b64encode(png()).decode(), "nope": 1}), 400, says="nope")
    truncated = png(64, 64)[:-30]
    assert_error(client.request("POST", "/predict", truncated, headers={"Content-Type": "image/png"}), 400)
    assert client.request("GET", "/health", token=False).status == 200


def test_concurrent_requests_share_predict_calls(segmenter):
    from concurrent.futures import ThreadPoolExecutor

    model, client = segmenter
    model.batches.clear()
    image, headers = png(), {"Content-Type": "image/png"}
    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda _: client.request("POST", "/predict", image, headers=headers), range(24)))
    assert all(r.status == 200 and len(r.json()["predictions"]) == 1 for r in replies)
    assert sum(model.batches) == 24 and max(model.batches) > 1, model.batches
    metrics = client.request("GET", "/metrics").data.decode()
    assert "mltk_batch_inputs_count" in metrics


def test_a_bug_is_a_one_line_500_and_the_server_keeps_serving():
    with thread_server(create_app(Broken(), "image", Settings(log=False))) as port:
        client = Client(port)
        reply = client.request("POST", "/predict", png(), headers={"Content-Type": "image/png"})
        assert_error(reply, 500, says="RuntimeError")
        assert "a bug in the model code" not in reply.json()["error"], "internals stay in the server's log"
        assert client.request("GET", "/health").status == 200


def _batcher_run(predict: Any, requests: list[list[Any]], grouped: bool = True) -> list[Any]:
    async def main() -> list[Any]:
        batcher = MicroBatcher(predict, grouped=grouped, max_batch=8, max_wait=0.05)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(r, {}) for r in requests), return_exceptions=True)
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_batcher_groups_up_to_max_batch_and_keeps_order():
    calls: list[list[int]] = []

    def predict(batch: list[int]) -> list[dict[str, int]]:
        calls.append(list(batch))
        return [{"double": 2 * x} for x in batch]

    results = _batcher_run(predict, [[i] for i in range(20)])
    assert results == [[{"double": 2 * i}] for i in range(20)]
    assert max(len(c) for c in calls) == 8 and len(calls) <= 4, calls


def test_batcher_isolates_one_bad_request_and_runs_ungrouped_kinds_alone():
    def predict(batch: list[int]) -> list[dict[str, int]]:
        if -1 in batch:
            raise DataError("negative input")
        return [{"x": x} for x in batch]

    results = _batcher_run(predict, [[1], [-1], [2, 3]])
    assert results[0] == [{"x": 1}] and results[2] == [{"x": 2}, {"x": 3}]
    assert isinstance(results[1], DataError)
    sizes: list[int] = []
    _batcher_run(lambda batch: sizes.append(len(batch)) or [{}] * len(batch), [[1], [2, 3]], grouped=False)
    assert sorted(sizes) == [1, 2]


def test_batcher_runs_cheap_calls_on_the_loop_and_costly_ones_on_its_thread():
    names: list[str] = []

    def predict(batch: list[int]) -> list[dict[str, int]]:
        names.append(threading.current_thread().name)
        return [{}] * len(batch)

    async def calls() -> float:
        batcher = MicroBatcher(predict, grouped=True, max_batch=8, max_wait=0.001)
        batcher.start()
        await batcher.submit([0], {})  # of unknown cost: on the thread, and timed
        measured = batcher.per_input
        for per_input in (0.0, 1.0):  # set, not timed: a loaded machine makes any timing noisy
            batcher.per_input = per_input
            await batcher.submit([1], {})
        await batcher.stop()
        return measured

    measured = asyncio.run(calls())
    assert 0 <= measured < 1, "the first call timed itself"
    assert names[0].startswith("mltk-predict") and names[2].startswith("mltk-predict")
    assert names[1] == "MainThread", "a call estimated under INLINE_S runs on the event loop"


class Slow(StandInSegmenter):
    def predict(self, batch: list[Any], **options: Any) -> list[dict[str, Any]]:
        time.sleep(1.0)
        return super().predict(batch)


def test_a_request_in_flight_finishes_when_the_server_stops():
    from concurrent.futures import ThreadPoolExecutor

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Slow(), "image", Settings(log=False)), port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    Client(port).wait_ready()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(Client(port).request, "POST", "/predict", png(), headers={"Content-Type": "image/png"})
        time.sleep(0.3)
        server.should_exit = True  # what uvicorn's SIGTERM handler does
        reply = pending.result(timeout=20)
    thread.join(20)
    assert reply.status == 200 and len(reply.json()["predictions"]) == 1
    assert not thread.is_alive()


def test_batcher_waits_for_a_batch_only_while_a_request_is_on_its_way():
    def costly(batch: list[int]) -> list[dict[str, int]]:
        time.sleep(0.002)
        return [{}] * len(batch)

    async def timings() -> tuple[float, float]:
        batcher = MicroBatcher(costly, grouped=True, max_batch=8, max_wait=0.3)
        batcher.start()
        start = time.perf_counter()
        await batcher.submit([1], {})
        lone = time.perf_counter() - start
        with batcher.arriving():  # another request is being read: worth waiting for, up to max_wait
            start = time.perf_counter()
            await batcher.submit([2], {})
            waited = time.perf_counter() - start
        await batcher.stop()
        return lone, waited

    lone, waited = asyncio.run(timings())
    assert lone < 0.2 and waited >= 0.29, (lone, waited)
