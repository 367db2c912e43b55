"""`mltk serve RUN` for every technique: the real server in a subprocess on a free loopback port, called over
real HTTP. /predict answers exactly what `mltk <tech> predict` prints; bad input is a 4xx with a one-line
JSON error and the server keeps serving; the token, the body limit and SIGTERM (exit 0).

Each technique trains its contract ``tiny_example`` once per module; a technique whose package does not
offer ``load`` and ``synthetic.tiny_example`` yet is skipped, saying so.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from mltoolkit.techniques import TECHNIQUES, Technique
from tests.conftest import ok

TOKEN = "serve-test-token"
TOKEN_ENV = "MLTK_SERVE_TEST_TOKEN"
START_TIMEOUT_S = 60  # model load under a loaded 2-core machine; the loop below stops by itself after it
SHORT_TIMEOUT_S = 30


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


class Client:
    """A real HTTP/1.1 client to 127.0.0.1:port, one connection per request (as a load of clients would)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port, self.token = port, token

    def request(
        self, method: str, path: str, body: bytes | Iterable[bytes] | None = None, *,
        headers: dict[str, str] | None = None, token: bool = True, chunked: bool = False,
    ) -> Reply:  # fmt: skip
        sent = dict(headers or {})
        if token and self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=SHORT_TIMEOUT_S)
        try:
            connection.request(method, path, body=body, headers=sent, encode_chunked=chunked)
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def post_json(self, path: str, document: Any, **kwargs: Any) -> Reply:
        body = json.dumps(document).encode()
        return self.request("POST", path, body, headers={"Content-Type": "application/json"}, **kwargs)

    def post_files(self, path: str, files: list[bytes]) -> Reply:
        boundary = "mltk-serve-test-boundary"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="in{i}.png"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
            for i, data in enumerate(files)
        ]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def wait_ready(self, process: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the server exited with {process.returncode} before answering")
            try:
                if self.request("GET", "/ready").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"no answer from 127.0.0.1:{self.port} within {START_TIMEOUT_S} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_error(reply: Reply, *statuses: int, says: str = "") -> str:
    """A 4xx (one of ``statuses``) whose body is one line of JSON ``{"error": ...}``; its message."""
    assert reply.status in statuses, (reply.status, reply.data[:300])
    assert b"\n" not in reply.data.strip(), reply.data
    message = reply.json()["error"]
    assert says.lower() in message.lower(), message
    return message


@dataclass
class Served:
    technique: Technique
    example: Any
    run_dir: Path
    client: Client
    process: subprocess.Popen
    log: Path


def _technique_or_skip(technique: Technique) -> Any:
    package = import_module(technique.package)
    try:
        synthetic = import_module(f"{technique.package}.synthetic")
        tiny_example = synthetic.tiny_example
        package.load  # noqa: B018  (lazy packages raise AttributeError for what they lack)
    except (ImportError, AttributeError):
        pytest.skip(f"{technique.package} does not offer load() and synthetic.tiny_example yet")
    return tiny_example


@pytest.fixture(scope="module", params=TECHNIQUES, ids=lambda t: t.name)
def served(request, tmp_path_factory) -> Iterator[Served]:
    """A tiny run of the technique, served with a token and a 1 MB body limit; stopped with SIGTERM at the end."""
    from typer.testing import CliRunner

    from mltoolkit.cli import app

    technique = request.param
    tiny_example = _technique_or_skip(technique)
    folder = tmp_path_factory.mktemp(technique.name)
    example = tiny_example(folder)
    runs = folder / "runs"
    result = CliRunner().invoke(app, [technique.name, "train", *example.train_args, "--runs-dir", str(runs), "-q"])
    assert result.exit_code == 0, result.output
    run_dir = Path(json.loads(result.stdout.strip().splitlines()[-1])["run_dir"])
    port, log = free_port(), folder / "serve.log"
    command = [sys.executable, "-m", "mltoolkit", "serve", str(run_dir), "--runs-dir", str(runs), "--port", str(port)]
    command += ["--token-env", TOKEN_ENV, "--max-body-mb", "1", "--threads", "1"]
    env = {**os.environ, TOKEN_ENV: TOKEN, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=folder)
    try:
        client = Client(port, TOKEN)
        client.wait_ready(process)
        yield Served(technique, example, run_dir, client, process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(SHORT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _predict_body(served: Served, records: list[Any]) -> tuple[bytes, dict[str, str]]:
    """The records of ``Predictor.predict`` as the HTTP body of the technique's input kind."""
    kind = served.technique.serves
    if kind == "image":
        document: Any = {"images": [base64.b64encode(_image_bytes(r)).decode() for r in records]}
    else:
        document = records
    return json.dumps(document).encode(), {"Content-Type": "application/json"}


def _image_bytes(record: Any) -> bytes:
    """An image record as the bytes a client sends: a file's bytes, or a picture encoded as PNG (lossless)."""
    if isinstance(record, bytes):
        return record
    if isinstance(record, (str, Path)):
        return Path(record).read_bytes()
    import io

    from PIL import Image

    picture = record if isinstance(record, Image.Image) else Image.fromarray(record)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _predict_path(served: Served) -> str:
    """/predict, with the CLI's default for unknown ids where the server's differs (it is strict)."""
    return "/predict?strict=false" if "strict" in _request_options(served) else "/predict"


def _request_options(served: Served) -> list[str]:
    return served.client.request("GET", "/metadata").json()["request_options"]


def _cli_records(mltk, served: Served) -> list[dict[str, Any]]:
    extra = list(served.example.predict_args)
    if served.technique.serves == "image" and "--output" not in extra and served.technique.name == "segment":
        extra += ["--output", str(served.run_dir.parent / "cli-masks")]
    result = ok(mltk(served.technique.name, "predict", served.run_dir, *extra, "--format", "jsonl"))
    return result.jsonl()


def test_health_ready_metadata_metrics_docs_page(served):
    client = served.client
    assert client.request("GET", "/health", token=False).json() == {"status": "ok"}
    assert client.request("GET", "/ready").json() == {"ready": True}
    metadata = client.request("GET", "/metadata").json()
    assert metadata["technique"] == served.technique.name
    assert metadata["serves"] == served.technique.serves
    assert metadata["mltk_version"]
    docs = client.request("GET", "/docs")
    assert docs.status == 200 and b"swagger" in docs.data.lower()
    assert "/predict" in client.request("GET", "/openapi.json").json()["paths"]
    page = client.request("GET", "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    metrics = client.request("GET", "/metrics").data.decode()
    assert 'mltk_requests_total{method="GET",path="/health",status="200"}' in metrics
    assert "mltk_request_seconds_bucket" in metrics and "mltk_batch_inputs_bucket" in metrics


def test_predict_is_what_the_cli_prints(served, mltk):
    body, headers = _predict_body(served, served.example.records)
    reply = served.client.request("POST", _predict_path(served), body, headers=headers)
    assert reply.status == 200, reply.data[:500]
    served_records = reply.json()["predictions"]
    if served.technique.serves == "image":  # a multipart upload of the same files answers the same
        uploaded = served.client.post_files("/predict", [base64.b64decode(i) for i in json.loads(body)["images"]])
        assert uploaded.json()["predictions"] == served_records
    printed = _cli_records(mltk, served)
    assert len(served_records) == len(printed)
    for by_server, by_cli in zip(served_records, printed):
        shared = {k for k in set(by_server) & set(by_cli) if not _names_a_file(by_cli[k], served)}
        assert shared, (by_server, by_cli)
        assert {k: by_server[k] for k in shared} == {k: by_cli[k] for k in shared}


def _names_a_file(value: Any, served: Served) -> bool:
    """The CLI names the files it read and wrote (an image, a mask); the server answers with their content."""
    inputs = {str(a) for a in served.example.predict_args}
    return isinstance(value, str) and (value in inputs or Path(value).is_file() or Path(value).name in inputs)


def test_one_record_alone_and_concurrent_requests_agree(served):
    """The same input answered alone and inside concurrent (micro-batched) requests gives the same record."""
    from concurrent.futures import ThreadPoolExecutor

    body, headers = _predict_body(served, served.example.records[:1])
    path = _predict_path(served)
    alone = served.client.request("POST", path, body, headers=headers)
    assert alone.status == 200, alone.data[:300]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: served.client.request("POST", path, body, headers=headers), range(16)))
    assert all(r.status == 200 for r in replies)
    for reply in replies:
        assert _close(reply.json()["predictions"], alone.json()["predictions"])


def _close(a: Any, b: Any, tolerance: float = 1e-5) -> bool:
    """Equal, floats within ``tolerance`` (a batch of 16 may take another kernel path than a batch of 1)."""
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= tolerance * max(1.0, abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tolerance) for x, y in zip(a, b))
    return a == b


def _bad_bodies(served: Served) -> list[tuple[str, bytes, dict[str, str], str]]:
    """(what, body, headers, a fragment of the error) for every bad input of this kind."""
    json_type = {"Content-Type": "application/json"}
    kind, first = served.technique.serves, served.example.records[0]
    bad = [
        ("malformed JSON", b'{"oops": ', json_type, "malformed JSON"),
        ("empty body", b"", json_type, "empty body"),
        ("a JSON number", b"42", json_type, "expected"),
        ("JSON nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, json_type, "malformed JSON"),
        ("text that is not UTF-8", b'{"a": "\xff\xfe"}', json_type, "malformed JSON"),
    ]
    if kind == "rows":
        missing = dict(list(first.items())[1:])
        bad.append(("a missing column", json.dumps(missing).encode(), json_type, next(iter(first))))
    elif kind == "observations":
        bad.append(("an observation one too long", json.dumps([*first, 0.0]).encode(), json_type, "length"))
        bad.append(("text for a number", json.dumps(["a"] * len(first)).encode(), json_type, "expected"))
    elif kind == "users":
        bad.append(("an unknown user", b'{"user": "no-such-user-anywhere"}', json_type, "no-such-user-anywhere"))
        bad.append(("a history that is not a list", b'{"history": 5}', json_type, "history"))
    elif kind == "image":
        bad.append(
            ("bytes that are not an image", b"not an image at all", {"Content-Type": "image/png"}, "not an image")
        )
        not_image = json.dumps({"image": base64.b64encode(b"GIF89a broken").decode()}).encode()
        bad.append(("base64 of no image", not_image, json_type, "not an image"))
        bad.append(("a file path", b'{"image": "/etc/passwd"}', json_type, "base64"))
    return bad


def test_bad_inputs_are_4xx_and_the_server_keeps_serving(served):
    client = served.client
    for what, body, headers, says in _bad_bodies(served):
        reply = client.request("POST", "/predict", body, headers=headers)
        assert 400 <= reply.status < 500, (what, reply.status, reply.data[:300])
        assert_error(reply, reply.status, says=says)
        assert client.request("GET", "/health", token=False).status == 200, f"down after {what}"
    body, headers = _predict_body(served, served.example.records[:1])
    unknown_option = client.request("POST", "/predict?no_such_option=1", body, headers=headers)
    assert_error(unknown_option, 400, says="unknown option")
    assert_error(client.request("GET", "/no/such/path"), 404, says="not found")
    assert_error(client.request("GET", "/predict"), 405)
    assert served.process.poll() is None


def test_token_body_limit_and_sigterm(served):
    client = served.client
    body, headers = _predict_body(served, served.example.records[:1])
    assert_error(client.request("POST", "/predict", body, headers=headers, token=False), 401, says="token")
    wrong = Client(client.port, "not-the-token")
    assert_error(wrong.request("GET", "/metadata"), 401, says="token")
    assert client.request("GET", "/health", token=False).status == 200
    too_big = b"[" + b"1," * 600_000 + b"1]"  # 1.2 MB against --max-body-mb 1
    assert_error(client.request("POST", "/predict", too_big, headers=headers), 413, says="limit")
    streamed = (too_big[i : i + 65536] for i in range(0, len(too_big), 65536))
    assert_error(client.request("POST", "/predict", streamed, headers=headers, chunked=True), 413, says="limit")
    assert client.request("GET", "/health").status == 200
    log = served.log.read_text()
    assert TOKEN not in log and "POST /predict 401" in log and "GET /health 200" in log
    stop = signal.SIGTERM if TECHNIQUES.index(served.technique) % 2 == 0 else signal.SIGINT  # both, over the five
    served.process.send_signal(stop)
    assert served.process.wait(SHORT_TIMEOUT_S) == 0
    assert "server stopped" in served.log.read_text()


def test_workers_serve_and_stop_together(served):
    if served.technique.serves != "users":
        pytest.skip("one technique is enough: the worker processes are uvicorn's, the same for every technique")
    port, log = free_port(), served.log.with_name("workers.log")
    command = [sys.executable, "-m", "mltoolkit", "serve", str(served.run_dir), "--port", str(port), "--workers", "2"]
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, cwd=served.run_dir.parent)
    try:
        client = Client(port)
        client.wait_ready(process)
        body, headers = _predict_body(served, served.example.records[:1])
        replies = [client.request("POST", "/predict?strict=false", body, headers=headers) for _ in range(6)]
        assert {r.status for r in replies} == {200}
        assert len({r.data for r in replies}) == 1, "every worker answers alike"
        metrics = client.request("GET", "/metrics").data.decode()
        assert 'mltk_requests_total{method="POST",path="/predict",status="200"} 6.0' in metrics, "all workers counted"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(SHORT_TIMEOUT_S) == 0, log.read_text()[-2000:]


def test_refusals_before_serving(mltk, tmp_path):
    from tests.conftest import fails

    fails(mltk("serve", "no-such-run", "--runs-dir", tmp_path), 3, "no-such-run")
    env = {TOKEN_ENV: ""}
    fails(mltk("serve", "no-such-run", "--token-env", TOKEN_ENV, "--runs-dir", tmp_path, env=env), 2, TOKEN_ENV)
    (tmp_path / "not-a-run").mkdir()
    fails(mltk("serve", tmp_path / "not-a-run"), 3, "not-a-run")
