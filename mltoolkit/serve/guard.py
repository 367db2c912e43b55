"""The door of every request: bearer token, body size limit, one log line and the metrics.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which copies every body through a task):
it refuses a request without the token (401) or with a declared body over the limit (413) before the app
sees it, and cuts a streamed body that grows past the limit (``BodyTooLarge``, answered 413 by the app).
The token is compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import json
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from mltoolkit.serve.inputs import BadRequest
from mltoolkit.serve.metrics import Metrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
OPEN_PATHS = ("/health",)  # answered without the token: liveness probes carry no secrets


class BodyTooLarge(BadRequest):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over the {limit / 2**20:g} MB limit (--max-body-mb)", 413)


class Guard:
    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, routes: Collection[str], max_body: int, token: str | None,
        log: bool = True,
    ) -> None:  # fmt: skip
        self.app, self.metrics, self.routes, self.max_body, self.log = app, metrics, routes, max_body, log
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is None:
                await self.app(scope, self._limited(receive), send_status)
            else:
                await _error(send_status, refusal)
        finally:
            self._record(scope, status[0], time.perf_counter() - start)

    def _refusal(self, scope: Scope) -> BadRequest | None:
        headers = dict(scope["headers"])
        if self.expected is not None and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                return BadRequest("missing or wrong bearer token (Authorization: Bearer ...)", 401)
        length = headers.get(b"content-length", b"0")
        if not length.isdigit():
            return BadRequest("Content-Length is not a number")
        if int(length) > self.max_body:
            return BodyTooLarge(self.max_body)
        return None

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that raises ``BodyTooLarge`` once a streamed (chunked) body passes the limit."""
        seen = [0]

        async def limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        return limited

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        path = scope["path"] if scope["path"] in self.routes else "other"
        self.metrics.observe(scope["method"], path, status, seconds)
        if self.log:
            shown = scope["path"][:200].encode("unicode_escape").decode("ascii")  # a %0A cannot forge a log line
            sys.stderr.write(f"{scope['method']} {shown} {status} {seconds * 1000:.1f} ms\n")


async def _error(send: Send, error: BadRequest) -> None:
    body = json.dumps({"error": str(error)}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if error.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
