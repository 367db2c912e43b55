"""Request bodies into ``predict`` inputs, by the technique's input kind (the registry's ``Technique.serves``).

This is the one place that reads what clients send. A body that does not fit its kind is a ``BadRequest``
naming what was wrong; checking the values themselves (columns, observation length, user ids) is the
Predictor's, exactly as for ``mltk <tech> predict``. Images arrive as bytes only: the server never opens a
path a client names.

Options come from the query string (``?n=5&proba=true``, values read as JSON where they parse) and, where
the body is an envelope object or a form, from its other fields.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

EXPECTED = {
    "rows": "a JSON row object {column: value, ...} or a list of them",
    "observations": "a JSON observation ([number, ...], or stacked frames [[[0-255, ...], ...], ...]) or a list",
    "users": 'JSON {"user": id}, {"users": [id, ...]}, {"history": [item, ...]} or a list of ids and histories',
    "image": 'an image upload (multipart/form-data), an image/* body, or JSON {"image": base64} / {"images": [...]}',
}
BATCHED = frozenset({"rows", "observations", "image"})  # one record per input: requests may share a predict call
MAX_FORM_FILES = 64


class BadRequest(Exception):
    """What a client sent cannot be served; ``str`` is the one-line error, ``status`` the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Parsed:
    inputs: list[Any]  # what Predictor.predict takes, in request order
    options: dict[str, Any]  # keyword options for predict


async def parse(kind: str, request: Request, rank: int = 1) -> Parsed:
    """The inputs and options of a ``POST /predict`` for a model of input ``kind``; ``rank``: the dimensions of one
    observation (1 for vectors, 3 for stacked frames), which tells one observation from a list of them."""
    options = {k: option_value(v) for k, v in request.query_params.items()} if request.scope["query_string"] else {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "image" and content_type == "multipart/form-data":
        return await _form(request, options)
    body = await request.body()
    if not body.strip():
        raise BadRequest(f"empty body; expected {EXPECTED[kind]}")
    if kind == "image" and content_type.startswith("image/"):
        return Parsed([checked_image(body, "body")], options)
    document = read_json(body)
    inputs, fields = _observations(document, rank) if kind == "observations" else _DECODERS[kind](document)
    return Parsed(inputs, {**options, **fields})


def read_json(body: bytes) -> Any:
    """The JSON document of ``body``, parsed by orjson (4-5x json's speed on a 1,000-row request; no NaN)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # also bad UTF-8 and nesting past 1,024 levels
        raise BadRequest(f"malformed JSON: {exc}") from None


def option_value(text: str) -> Any:
    """``true`` -> True, ``5`` -> 5, ``0.5`` -> 0.5; anything else stays text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (bool, int, float)) or value is None else text


def checked_image(data: bytes, name: str) -> bytes:
    """``data`` unchanged if Pillow can read it as an image (bombs and truncated files refused)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception as exc:  # Pillow raises many types for bad bytes; each means "not an image"
        raise BadRequest(f"{name}: not an image ({type(exc).__name__}: {exc})") from None
    return data


def _rows(document: Any) -> tuple[list[Any], dict[str, Any]]:
    rows = [document] if isinstance(document, dict) else document
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise BadRequest(f"expected {EXPECTED['rows']}; got {_shown(document)}")
    return rows, {}


def _observations(document: Any, rank: int) -> tuple[list[Any], dict[str, Any]]:
    """One observation (nested ``rank`` lists deep) or a list of them; the numbers of frames are the Predictor's to
    check (their shape and 0-255 range), as for ``mltk rl predict``."""
    depth, first = 0, document
    while isinstance(first, list) and first:
        depth, first = depth + 1, first[0]
    observations = [document] if depth == rank else document if depth == rank + 1 else None
    if observations is None or (
        rank == 1 and not all(isinstance(o, list) and all(map(_is_number, o)) for o in observations)
    ):
        raise BadRequest(f"expected {EXPECTED['observations']}; got {_shown(document)}")
    return observations, {}


def _users(document: Any) -> tuple[list[Any], dict[str, Any]]:
    if isinstance(document, list) and document:
        return document, {}
    if not isinstance(document, dict):
        raise BadRequest(f"expected {EXPECTED['users']}; got {_shown(document)}")
    if "history" in document:
        record_keys = ("history", "ratings", "user")
        record = {key: document[key] for key in record_keys if key in document}
        return [record], {k: v for k, v in document.items() if k not in record_keys}
    for key, many in (("users", True), ("user", False)):
        if key in document:
            users = document[key] if many else [document[key]]
            if not isinstance(users, list) or not users:
                raise BadRequest(f'"users" must be a non-empty list of ids; got {_shown(users)}')
            return users, {k: v for k, v in document.items() if k != key}
    raise BadRequest(f"expected {EXPECTED['users']}; got {_shown(document)}")


def _images(document: Any) -> tuple[list[Any], dict[str, Any]]:
    if not isinstance(document, dict) or not ({"image", "images"} & set(document)):
        raise BadRequest(f"expected {EXPECTED['image']}; got {_shown(document)}")
    key = "image" if "image" in document else "images"
    encoded = [document[key]] if key == "image" else document[key]
    if not isinstance(encoded, list) or not encoded or not all(isinstance(e, str) for e in encoded):
        raise BadRequest(f'"{key}" must hold base64 text; got {_shown(encoded)}')
    images = [checked_image(_base64(text, f"{key} {i}"), f"{key} {i}") for i, text in enumerate(encoded)]
    return images, {k: v for k, v in document.items() if k != key}


async def _form(request: Request, options: dict[str, Any]) -> Parsed:
    """Every uploaded file of a multipart form, in order; its text fields are options."""
    try:
        form = await request.form(max_files=MAX_FORM_FILES)
    except Exception as exc:  # python-multipart's and Starlette's parse errors
        raise BadRequest(f"malformed multipart form: {exc}") from None
    images, fields = [], dict(options)
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            images.append(checked_image(await value.read(), value.filename or name))
        else:
            fields[name] = option_value(value)
    await form.close()
    if not images:
        raise BadRequest(f"the form holds no image file; expected {EXPECTED['image']}")
    return Parsed(images, fields)


def _base64(text: str, name: str) -> bytes:
    try:
        return base64.b64decode(text.split(",", 1)[-1] if text.startswith("data:") else text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name}: not base64 text") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_DECODERS: dict[str, Callable[[Any], tuple[list[Any], dict[str, Any]]]] = {
    "rows": _rows,
    "users": _users,
    "image": _images,
}
