"""Micro-batching: concurrent requests share one ``predict`` call, run off the event loop.

Requests queue up; the loop takes the first, then keeps taking until ``max_batch`` inputs or ``max_wait``
seconds, and runs those with the same options as one ``predict`` on a single worker thread (one forward pass
for a torch model; one model never used by two threads at once). It waits only while another request is on
its way (being read, not yet queued): a lone client pays no wait. While a call runs, the next requests
queue, so under load batches fill without waiting. A grouped call that fails is retried request by request,
so one client's bad row is that client's error only.

A model whose calls are cheaper than a thread hand-off (LightGBM on a few rows: tens of microseconds, while
waking the worker thread and taking the GIL back costs more on a busy machine) is called on the event loop
itself and does not wait for a batch to fill: the batcher times each call per input and decides per batch.

Kinds whose records do not map one-to-one to inputs (``grouped=False``) run one request per call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Predict = Callable[..., list[dict[str, Any]]]
INLINE_S = 0.0005  # a call expected to take less runs on the event loop and waits for no batch
SMOOTHING = 0.2  # weight of the latest call in the running seconds-per-input estimate


@dataclass
class _Pending:
    inputs: list[Any]
    options: dict[str, Any]
    future: asyncio.Future[list[dict[str, Any]]] = field(repr=False)

    @property
    def key(self) -> str:
        return json.dumps(self.options, sort_keys=True, default=str)


class MicroBatcher:
    def __init__(
        self, predict: Predict, *, grouped: bool, max_batch: int, max_wait: float,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:  # fmt: skip
        self.predict, self.grouped, self.max_batch, self.max_wait = predict, grouped, max_batch, max_wait
        self.on_batch = on_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mltk-predict")
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.per_input = float("inf")  # running estimate of predict's seconds per input; unknown until timed
        self.on_the_way = 0  # requests being read that will submit: worth waiting for

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.executor.shutdown(wait=True)

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Around reading a request that will ``submit``: a batch being collected waits for it."""
        self.on_the_way += 1
        try:
            yield
        finally:
            self.on_the_way -= 1

    async def submit(self, inputs: list[Any], options: dict[str, Any]) -> list[dict[str, Any]]:
        """The records of ``inputs`` in order, from a ``predict`` call shared with other requests."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(inputs, options, future))
        return await future

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function`` on the predict thread (anything else that touches the model: ``similar``)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: function(*args, **kwargs))

    async def _loop(self) -> None:
        while True:
            batch = await self._collect()
            groups: dict[str, list[_Pending]] = {}
            for pending in batch:
                groups.setdefault(pending.key if self.grouped else str(id(pending)), []).append(pending)
            for group in groups.values():
                await self._run(group)

    async def _collect(self) -> list[_Pending]:
        """The first waiting request, plus what arrives before the batch is full or ``max_wait`` has passed."""
        batch = [await self.queue.get()]
        size = len(batch[0].inputs)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while self.grouped and size < self.max_batch:
            try:
                pending = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0 or self._cheap(size) or not self.on_the_way:
                    break
                try:
                    pending = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
            batch.append(pending)
            size += len(pending.inputs)
        return batch

    def _cheap(self, size: int) -> bool:
        return self.per_input * size < INLINE_S

    def _timed(self, inputs: list[Any], options: dict[str, Any]) -> list[dict[str, Any]]:
        start = time.perf_counter()
        records = self.predict(inputs, **options)
        latest = (time.perf_counter() - start) / max(1, len(inputs))
        self.per_input = (
            latest if self.per_input == float("inf") else (1 - SMOOTHING) * self.per_input + SMOOTHING * latest
        )
        return records

    async def _run(self, group: list[_Pending]) -> None:
        inputs = [x for pending in group for x in pending.inputs]
        options = group[0].options
        try:
            if self._cheap(len(inputs)):
                outcome: list[dict[str, Any]] | Exception = self._timed(inputs, options)
            else:
                outcome = await self.call(self._timed, inputs, options)
        except Exception as exc:
            outcome = exc
        if len(group) > 1 and (isinstance(outcome, Exception) or len(outcome) != len(inputs)):
            for pending in group:  # someone's bad input, or records not one per input: each request alone
                await self._run([pending])
            return
        if isinstance(outcome, Exception):
            _settle(group[0], exception=outcome)
            return
        self.on_batch(len(inputs))
        start = 0
        for pending in group:
            end = start + len(pending.inputs) if len(group) > 1 else len(outcome)
            _settle(pending, outcome[start:end])
            start = end


def _settle(pending: _Pending, records: list[dict[str, Any]] | None = None, exception: Exception | None = None) -> None:
    if pending.future.done():  # the client went away and the request was cancelled
        return
    if exception is not None:
        pending.future.set_exception(exception)
    else:
        pending.future.set_result(records or [])
