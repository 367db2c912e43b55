"""The HTTP app over one Predictor: the same endpoints for every technique (docs/serve.md).

The app knows a model only through the contract (``predict``, ``metadata``, and ``similar`` where a
Predictor has it) and its input kind; everything technique-specific stays behind ``predict``. Every error
is a one-line JSON ``{"error": ...}``: 4xx for what a client sent, 500 only for a bug (logged with its
traceback, and the server keeps serving).
"""

from __future__ import annotations

import inspect
import json
import sys
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Route

from mltoolkit import __version__
from mltoolkit.core.contract import Predictor
from mltoolkit.core.errors import MltkError
from mltoolkit.serve.batcher import MicroBatcher
from mltoolkit.serve.guard import Guard
from mltoolkit.serve.inputs import BATCHED, EXPECTED, BadRequest, parse, read_json
from mltoolkit.serve.metrics import CONTENT_TYPE, Metrics
from mltoolkit.serve.outputs import response_body
from mltoolkit.serve.page import PAGE


@dataclass(frozen=True)
class Settings:
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_body_mb: float = 20.0
    token: str | None = None
    log: bool = True


def create_app(predictor: Predictor, kind: str, settings: Settings = Settings()) -> Any:
    """The ASGI app serving ``predictor``, whose inputs are of ``kind`` (the registry's ``serves``)."""
    metrics = Metrics()
    batcher = MicroBatcher(
        predictor.predict, grouped=kind in BATCHED, max_batch=settings.max_batch,
        max_wait=settings.max_wait_ms / 1000, on_batch=metrics.batch.observe,
    )  # fmt: skip
    accepted = _keyword_options(predictor.predict)
    strict = {"strict": True} if "strict" in accepted else {}  # an unknown id is the client's 4xx, not a fallback
    rank = len(predictor.metadata().get("observation_shape") or [0])  # rl: vectors 1, stacked frames 3

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title=f"mltk serve: {predictor.technique}", version=__version__, lifespan=lifespan,
        description=f"POST /predict takes {EXPECTED[kind]}. Options go in the query string.",
    )  # fmt: skip
    _add_error_handlers(app)
    _document_predict(app, kind)

    async def predict(request: Request) -> Response:  # a plain Starlette route: no per-request dependency solving
        with batcher.arriving():
            parsed = await parse(kind, request, rank)
        unknown = sorted(set(parsed.options) - accepted)
        if unknown:
            raise BadRequest(f"unknown option {unknown[0]!r}; this model takes {', '.join(sorted(accepted))}")
        records = await batcher.submit(parsed.inputs, {**strict, **parsed.options})
        return _json_bytes(response_body(records))

    app.router.routes.insert(0, Route("/predict", predict, methods=["POST"]))  # first: the route matched most

    if callable(getattr(predictor, "similar", None)):

        @app.post("/similar", summary='Items like given items: {"items": [id, ...], "n": 10}')
        async def similar(request: Request) -> Response:
            document = read_json(await request.body())
            items = document.get("items", [document.get("item")]) if isinstance(document, dict) else document
            if not isinstance(items, list) or not items or any(i is None for i in items):
                raise BadRequest('expected {"items": [id, ...]} or {"item": id}, with an optional "n"')
            n = document.get("n", 10) if isinstance(document, dict) else 10
            records = await batcher.call(predictor.similar, items, n, strict=True)
            return _json_bytes(response_body(records))

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: the model is loaded")
    async def ready() -> dict[str, bool]:
        return {"ready": batcher.task is not None and not batcher.task.done()}

    @app.get("/metadata", summary="Technique, run, version and input schema")
    async def metadata() -> Response:
        described = {"mltk_version": __version__, **predictor.metadata(), "serves": kind}
        return _json_bytes(json.dumps({**described, "request_options": sorted(accepted)}, default=str).encode())

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/", response_class=HTMLResponse, summary="A page for a person to try the model")
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    routes = {route.path for route in app.routes}
    max_body = int(settings.max_body_mb * 2**20)
    return Guard(app, metrics=metrics, routes=routes, max_body=max_body, token=settings.token, log=settings.log)


def _keyword_options(predict: Any) -> set[str]:
    """The keyword options ``predict`` takes (what a client may pass besides the inputs)."""
    parameters = list(inspect.signature(predict).parameters.values())[1:]
    return {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _document_predict(app: FastAPI, kind: str) -> None:
    """Add ``POST /predict`` (a plain route, which FastAPI does not describe) to the OpenAPI schema at /docs."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            body = {"required": True, "description": EXPECTED[kind], "content": _body_types(kind)}
            answer = {"description": '{"predictions": [record, ...]}: the records `mltk predict` prints'}
            errors = {"description": '{"error": "..."}: what was wrong with the request'}
            post = {"summary": "Predict", "requestBody": body, "responses": {"200": answer, "4XX": errors}}
            schema["paths"]["/predict"] = {"post": post}
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _body_types(kind: str) -> dict[str, Any]:
    json_body = {"application/json": {"schema": {}}}
    if kind != "image":
        return json_body
    upload = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
    return {**json_body, "multipart/form-data": {"schema": upload}, "image/*": {"schema": {"format": "binary"}}}


def _json_bytes(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _error(status: int, message: str) -> Response:
    body = json.dumps({"error": " ".join(message.split())}).encode()  # one line, whatever the message held
    return Response(body, status_code=status, media_type="application/json")


def _add_error_handlers(app: FastAPI) -> None:
    async def bad_request(request: Request, exc: Exception) -> Response:
        return _error(exc.status if isinstance(exc, BadRequest) else 400, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = "not found" if exc.status_code == 404 else str(exc.detail)
        return _error(exc.status_code, f"{message}: {request.method} {request.url.path}")

    async def bug(request: Request, exc: Exception) -> Response:
        traceback.print_exception(exc, file=sys.stderr)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the traceback")

    app.add_exception_handler(BadRequest, bad_request)
    app.add_exception_handler(MltkError, bad_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, bug)
