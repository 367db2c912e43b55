"""`mltk serve` under load on loopback, side by side with MLflow's `mlflow models serve` and a bare endpoint.

What it measures (issue 14), each server started here on 127.0.0.1 and stopped after, one uvicorn worker each:
1. boost (LightGBM's binary example: 100 trees, 63 leaves, ../shared/data/lightgbm): single-row requests at
   1, 16 and 64 connections for mltk serve, MLflow serving the same booster (``--env-manager local``) and a
   bare FastAPI endpoint returning a constant (this machine's HTTP ceiling); 1,000-row requests against
   ``Predictor.predict`` on the same rows in process. Goals: >= 20x MLflow's req/s at 16 connections,
   p99 <= 25 ms, >= 50% of the bare ceiling; 1,000-row requests >= 0.8x in-process rows/s.
2. transfer resnet18 and segment LRASPP-MobileNetV3 (random weights): single-image requests at 16 connections
   vs in-process batched images/s (goal >= 0.8x, thanks to micro-batching), with the batch sizes the server formed.
3. recommend top-10 for one user, rl one observation, at 16 connections.
4. soak: --soak seconds at 16 connections on the boost server, 1 of the 16 sending malformed JSON (about 5%
   of requests): zero 5xx, every malformed request answered 4xx, RSS at the end within 10% of after warm-up.

It installs nothing. The load generator is hey (``apt-get install hey``) or else wrk (``apt-get install wrk``).
MLflow goes in an environment of its own (its pins would move mltk's)::

    python3 -m venv mlflow-env && mlflow-env/bin/pip install mlflow lightgbm pandas

then ``--mlflow-python mlflow-env/bin/python`` (default: this Python, if it imports mlflow). A peer or a
peer that is missing (no mlflow, no example data) is skipped with a line saying so.

    .venv/bin/python benchmarks/serve_load.py [--duration 10] [--soak 60] \
        [--only boost,transfer,segment,recommend,rl,soak]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LGB_DATA = Path(os.environ.get("LGB_DATA", "../shared/data/lightgbm")) / "binary_classification"
START_TIMEOUT_S = 120
MALFORMED_SHARE = 0.05  # of the soak's requests


@dataclass
class Load:
    """One load-generator run: requests/s, latency percentiles (ms), and how many answers were not 2xx."""

    rps: float
    p50: float
    p99: float
    statuses: dict[int, int]
    errors: int

    @property
    def failed(self) -> int:
        return self.errors + sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


# --- load generators ---------------------------------------------------------------------------------------------


def generator() -> str:
    for name in ("hey", "wrk"):
        if shutil.which(name):
            return name
    raise SystemExit("no load generator: apt-get install hey (or wrk)")


def run_load(
    url: str, body: Path, content_type: str, connections: int, seconds: float, tool: str, rate: float = 0
) -> Load:
    """POST ``body`` for ``seconds`` over ``connections``; ``rate``: requests/s per connection at most (hey only)."""
    if tool == "hey":
        command = ["hey", "-z", f"{seconds}s", "-c", str(connections), "-m", "POST", "-T", content_type]
        command += ["-q", f"{rate:g}"] if rate else []
        output = _run([*command, "-D", str(body), url])
        return _parse_hey(output)
    script = body.with_suffix(".lua")
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "{content_type}"\n'
        f"local f = io.open({json.dumps(str(body))}, 'rb'); wrk.body = f:read('*a'); f:close()\n"
    )
    threads = str(min(connections, 2))
    output = _run(
        ["wrk", "-t", threads, "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), url]
    )
    return _parse_wrk(output)


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _parse_hey(text: str) -> Load:
    def seconds_at(percent: int) -> float:
        found = re.search(rf"{percent}% in ([\d.]+) secs", text)
        return float(found.group(1)) * 1000 if found else float("nan")

    statuses = {int(s): int(n) for s, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    errors_part = text.split("Error distribution:")[1] if "Error distribution:" in text else ""
    errors = sum(int(n) for n in re.findall(r"\[(\d+)\]", errors_part))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    return Load(rps, seconds_at(50), seconds_at(99), statuses, errors)


def _parse_wrk(text: str) -> Load:
    def ms_at(percent: int) -> float:
        value, unit = re.search(rf"{percent}%\s+([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    total = int(re.search(r"(\d+) requests in", text).group(1))
    bad = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    return Load(rps, ms_at(50), ms_at(99), {200: total - bad, 400: bad}, errors)  # wrk does not split non-2xx


# --- servers -----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def server(command: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Start ``command``, wait (bounded) for ``ready_url`` to answer, yield its pid; SIGTERM it after."""
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, stdout=stderr, stderr=stderr, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}; see {log}")
            try:
                urllib.request.urlopen(ready_url, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ready_url} did not answer within {START_TIMEOUT_S} s; see {log}") from None
                time.sleep(0.3)
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def mltk_server(run_dir: Path, runs: Path, work: Path, *extra: str, pids: list[int] | None = None) -> Iterator[str]:
    """``mltk serve RUN`` on a free port; its pid is appended to ``pids`` (for RSS) when given."""
    port = free_port()
    command = [sys.executable, "-m", "mltoolkit", "serve", str(run_dir), "--runs-dir", str(runs), "--port", str(port)]
    with server([*command, *extra], f"http://127.0.0.1:{port}/ready", work / f"mltk-{port}.log") as pid:
        if pids is not None:
            pids.append(pid)
        yield f"http://127.0.0.1:{port}"


BARE_APP = """
from fastapi import FastAPI
from fastapi.responses import Response

app = FastAPI()


@app.post("/predict")
async def predict() -> Response:
    return Response(b'{"predictions":[{"prediction":0.5}]}', media_type="application/json")


@app.get("/health")
async def health() -> Response:
    return Response(b"ok")
"""


@contextmanager
def bare_server(work: Path) -> Iterator[str]:
    (work / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--log-level", "warning"]
    command += ["--no-access-log", "--app-dir", str(work)]
    with server(command, f"http://127.0.0.1:{port}/health", work / "bare.log"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def mlflow_server(python: str, model_file: Path, work: Path) -> Iterator[str]:
    """MLflow serving the booster of ``model_file`` (saved as an MLflow model first), one worker."""
    saved = work / "mlflow-model"
    if not saved.exists():
        booster = f"lightgbm.Booster(model_file={str(model_file)!r})"
        save = f"import lightgbm, mlflow.lightgbm; mlflow.lightgbm.save_model({booster}, {str(saved)!r})"
        subprocess.run([python, "-c", save], check=True, capture_output=True)
    port = free_port()
    command = [python, "-m", "mlflow", "models", "serve", "-m", str(saved), "--env-manager", "local"]
    command += ["-p", str(port), "-h", "127.0.0.1", "--workers", "1"]
    path = {"PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}"}  # MLflow runs `uvicorn` from PATH
    with server(command, f"http://127.0.0.1:{port}/ping", work / "mlflow.log", env=path):
        yield f"http://127.0.0.1:{port}"


def has_mlflow(python: str) -> bool:
    return subprocess.run([python, "-c", "import mlflow, lightgbm"], capture_output=True).returncode == 0


# --- measurements ------------------------------------------------------------------------------------------------


def in_process_rate(predict: Any, batch: list[Any], seconds: float) -> float:
    """Inputs per second of ``predict(batch)`` called in a loop for about ``seconds``."""
    predict(batch)  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        predict(batch)
        done += len(batch)
    return done / (time.perf_counter() - start)


def metric_sum(url: str, name: str) -> float:
    text = urllib.request.urlopen(f"{url}/metrics").read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def batch_sizes(url: str) -> str:
    count, total = metric_sum(url, "mltk_batch_inputs_count"), metric_sum(url, "mltk_batch_inputs_sum")
    return f"mean batch {total / count:.1f} over {count:.0f} predict calls" if count else "no batches"


def rss_mb(pid: int) -> float:
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else float("nan")


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def mltk(*args: str) -> dict[str, Any]:
    """Run ``mltk ARGS -q`` and return the JSON it printed last."""
    out = subprocess.run([sys.executable, "-m", "mltoolkit", *args, "-q"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"mltk {' '.join(args[:2])} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the four parts ----------------------------------------------------------------------------------------------


def bench_boost(args: argparse.Namespace, work: Path, tool: str, table: list[list[Any]]) -> None:
    if not LGB_DATA.is_dir():
        print(f"skip boost: {LGB_DATA} not found (set LGB_DATA)", file=sys.stderr)
        return
    run_dir, predictor = _boost_run(work)
    features, values = _boost_rows(predictor)
    rows = [dict(zip(features, map(float, row))) for row in values]
    bodies = {"mltk serve": (write_json(work / "row.json", rows[0]), write_json(work / "rows.json", rows))}
    peers = {"mltk serve": lambda: mltk_server(run_dir, work / "runs", work, "--threads", "1")}
    if has_mlflow(args.mlflow_python):
        bodies["mlflow models serve"] = (
            write_json(work / "mlflow-row.json", _mlflow_body(features, values[:1])),
            write_json(work / "mlflow-rows.json", _mlflow_body(features, values)),
        )
        peers["mlflow models serve"] = lambda: mlflow_server(args.mlflow_python, run_dir / "model.txt", work)
    else:
        print(
            f"skip MLflow: {args.mlflow_python} cannot import mlflow and lightgbm (see the docstring)", file=sys.stderr
        )
    peers["bare FastAPI"] = lambda: bare_server(work)
    bodies["bare FastAPI"] = bodies["mltk serve"][:1]
    in_process = _boost_in_process(predictor, rows, args.duration, table)
    figures: dict[tuple[str, str], Load] = {}
    for name, start in peers.items():
        path = "/invocations" if name.startswith("mlflow") else "/predict"
        with start() as url:
            for connections in (1, 16, 64):
                figures[name, f"1 row {connections}"] = found = run_load(
                    url + path, bodies[name][0], "application/json", connections, args.duration, tool
                )
                table.append(["boost", name, "1 row", connections, f"{found.rps:,.0f} req/s", *_latency(found)])
            if len(bodies[name]) > 1:
                figures[name, "1000 rows"] = found = run_load(
                    url + path, bodies[name][1], "application/json", 16, args.duration, tool
                )
                table.append(["boost", name, "1000 rows", 16, f"{found.rps * 1000:,.0f} rows/s", *_latency(found)])
    _boost_goals(figures, in_process)


def _boost_run(work: Path, name: str = "serve-bench") -> tuple[Path, Any]:
    """A run trained with LightGBM's binary example conf (100 trees, 63 leaves) and its Predictor."""
    from mltoolkit.serve.server import load_predictor

    conf = ["--lightgbm-config", str(LGB_DATA / "train.conf"), "--threads", "1", "--name", name]
    trained = mltk("boost", "train", str(LGB_DATA / "binary.train"), *conf, "--runs-dir", str(work / "runs"))
    return Path(trained["run_dir"]), load_predictor(trained["run_dir"], runs_dir=work / "runs", threads=1)[0]


def _boost_rows(predictor: Any) -> tuple[list[str], list[list[str]]]:
    """The model's feature names and 1,000 rows of values (the test file's 500, then the training file's)."""
    features = [f["name"] if isinstance(f, dict) else f for f in predictor.metadata()["features"]]
    lines = (LGB_DATA / "binary.test").read_text().splitlines() + (LGB_DATA / "binary.train").read_text().splitlines()
    return features, [line.split("\t")[1:] for line in lines[:1000]]


def _boost_in_process(predictor: Any, rows: list[dict[str, float]], seconds: float, table: list) -> float:
    """Rows/s of ``Predictor.predict`` in this process, one row and 1,000 rows a call; returns the latter."""
    for batch in (rows[:1], rows):
        rate = in_process_rate(predictor.predict, batch, seconds)
        table.append(["boost", "in-process Predictor.predict", f"{len(batch)} rows", "-", f"{rate:,.0f} rows/s"])
    return rate


def _mlflow_body(features: list[str], rows: list[list[str]]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": features, "data": [[float(v) for v in row] for row in rows]}}


def _latency(found: Load) -> list[str]:
    shown = [f"{ms:.1f}" if ms == ms else "-" for ms in (found.p50, found.p99)]  # hey leaves out what it lacks
    return [*shown, str(found.failed)]


def _boost_goals(figures: dict[tuple[str, str], Load], bulk_rate: float) -> None:
    ours = figures["mltk serve", "1 row 16"]
    print(f"boost goal: p99 at 16 connections {ours.p99:.1f} ms (goal <= 25)")
    if ("mlflow models serve", "1 row 16") in figures:
        ratio = ours.rps / figures["mlflow models serve", "1 row 16"].rps
        print(f"boost goal: {ratio:.1f}x MLflow's req/s at 16 connections (goal >= 20x)")
    bare = figures["bare FastAPI", "1 row 16"]
    print(f"boost goal: {ours.rps / bare.rps:.0%} of the bare endpoint's req/s at 16 connections (goal >= 50%)")
    print(f"boost: p99 {ours.p99 / bare.p99:.1f}x the bare endpoint's ({bare.p99:.1f} ms) under the same load")
    ratio = figures["mltk serve", "1000 rows"].rps * 1000 / bulk_rate
    print(f"boost goal: 1000-row requests {ratio:.2f}x in-process rows/s (goal >= 0.8x)")


def bench_images(args: argparse.Namespace, work: Path, tool: str, table: list[list[Any]]) -> None:
    """transfer (resnet18) and segment (LRASPP), random weights: one image per request at 16 connections."""
    from mltoolkit.serve.server import load_predictor

    runs = work / "runs"
    cases = {"transfer": _transfer_run, "segment": _segment_run}
    for technique in [name for name in cases if name in args.only]:
        run_dir, image = cases[technique](work, runs)
        predictor, _ = load_predictor(run_dir, runs_dir=runs)
        rate = in_process_rate(predictor.predict, [image] * 32, args.duration)
        table.append([technique, "in-process Predictor.predict", "32 images", "-", f"{rate:,.1f} images/s"])
        body = work / f"{technique}.jpg"
        body.write_bytes(image)
        with mltk_server(run_dir, runs, work, "--max-batch", "32", "--max-wait-ms", "5") as url:
            found = run_load(url + "/predict", body, "image/jpeg", 16, args.duration, tool)
            table.append([technique, "mltk serve", "1 image", 16, f"{found.rps:,.1f} images/s", *_latency(found)])
            ratio = found.rps / rate
            print(f"{technique} goal: {ratio:.2f}x in-process batched images/s (goal >= 0.8x); {batch_sizes(url)}")


def _transfer_run(work: Path, runs: Path) -> tuple[Path, bytes]:
    """A resnet18 classifier trained one epoch on 8 plain-colour images; one of them as the request."""
    from PIL import Image

    data = work / "images"
    for label, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        for split in ("train", "val"):
            (data / split / label).mkdir(parents=True, exist_ok=True)
            for i in range(4):
                Image.new("RGB", (256, 256), tuple(c + 5 * i for c in colour)).save(data / split / label / f"{i}.jpg")
    recipe = ["--model", "resnet18", "--weights", "none", "--epochs", "1", "--name", "serve-bench"]
    trained = mltk("transfer", "train", "--data", str(data), *recipe, "--runs-dir", str(runs))
    return Path(trained["run_dir"]), (data / "val" / "red" / "0.jpg").read_bytes()


def _segment_run(work: Path, runs: Path) -> tuple[Path, bytes]:
    """An LRASPP-MobileNetV3 segmenter trained one epoch on 8 synthetic 256-pixel images; a 256x256 JPEG request."""
    import io

    from PIL import Image

    from mltoolkit.segment.synthetic import write_shapes

    root = write_shapes(work / "shapes", train=8, val=2, size=256)
    recipe = ["--model", "lraspp_mobilenet_v3_large", "--weights", "none", "--weights-backbone", "none"]
    recipe += ["--size", "256", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--name", "serve-bench"]
    trained = mltk("segment", "train", str(root), *recipe, "--runs-dir", str(runs))
    image = io.BytesIO()
    Image.open(next((root / "val" / "images").glob("*.png"))).convert("RGB").save(image, "JPEG")
    return Path(trained["run_dir"]), image.getvalue()


def bench_recommend_rl(args: argparse.Namespace, work: Path, tool: str, table: list[list[Any]]) -> None:
    runs = work / "runs"
    cases = []
    if "recommend" in args.only:
        from mltoolkit.recommend.synthetic import ratings_table, write_csv

        ratings = write_csv(work / "ratings.csv", ratings_table(users=2000, items_per_group=200, groups=5, per_user=20))
        trained = mltk("recommend", "train", str(ratings), "--model", "als", "--runs-dir", str(runs), "--threads", "1")
        cases.append(("recommend", trained["run_dir"], {"user": "u1", "n": 10}, "top-10 for 1 user"))
    if "rl" in args.only:
        trained = mltk("rl", "train", "--env", "CartPole-v1", "--total-steps", "2000", "--runs-dir", str(runs))
        cases.append(("rl", trained["run_dir"], [0.01, 0.1, -0.02, -0.1], "1 observation"))
    for technique, run_dir, document, what in cases:
        body = write_json(work / f"{technique}.json", document)
        with mltk_server(Path(run_dir), runs, work) as url:
            found = run_load(url + "/predict", body, "application/json", 16, args.duration, tool)
            table.append([technique, "mltk serve", what, 16, f"{found.rps:,.0f} req/s", *_latency(found)])


def soak(args: argparse.Namespace, work: Path, tool: str) -> None:
    """Good rows on 15 connections and, on a 16th, malformed JSON at 5% of the warm-up's rate, against boost."""
    runs, good, bad = work / "runs", work / "soak-row.json", work / "malformed.json"
    run_dir, predictor = _boost_run(work, "serve-soak")
    features, values = _boost_rows(predictor)
    write_json(good, dict(zip(features, map(float, values[0]))))
    bad.write_text('{"not json": ')
    pids: list[int] = []
    with mltk_server(run_dir, runs, work, "--threads", "1", pids=pids) as url:
        warm = run_load(url + "/predict", good, "application/json", 15, min(5.0, args.soak), tool)  # as the soak
        before = rss_mb(pids[0])
        rate = warm.rps * MALFORMED_SHARE / (1 - MALFORMED_SHARE)
        child = [sys.executable, __file__, "--_malformed", url, str(bad), str(args.soak), tool, str(rate)]
        with open(work / "malformed.out", "w") as out:
            malformed = subprocess.Popen(child, stdout=out)
            found = run_load(url + "/predict", good, "application/json", 15, args.soak, tool)
            malformed.wait(args.soak + 60)
        counted = json.loads((work / "malformed.out").read_text())
        bad_load = Load(**{**counted, "statuses": {int(k): v for k, v in counted["statuses"].items()}})
        after = rss_mb(pids[0])
        five = metric_sum(url, 'mltk_requests_total{method="POST",path="/predict",status="5')
    share = sum(bad_load.statuses.values()) / max(1, sum(bad_load.statuses.values()) + sum(found.statuses.values()))
    answered_4xx = sum(n for s, n in bad_load.statuses.items() if 400 <= s < 500)
    print(
        textwrap.dedent(f"""\
        soak {args.soak:g} s at 16 connections: {found.rps + bad_load.rps:,.0f} req/s, {share:.1%} malformed
          5xx: {five:.0f} (goal 0); malformed answered 4xx: {answered_4xx} of {sum(bad_load.statuses.values())}
          good requests failed: {found.failed}; RSS after warm-up {before:.0f} MB, at the end {after:.0f} MB
          ({after / before - 1:+.1%}, goal within 10%)""")
    )


def print_table(table: list[list[Any]]) -> None:
    header = ["technique", "server", "request", "conns", "throughput", "p50 ms", "p99 ms", "errors"]
    rows = [header, *[[str(cell) for cell in row] + [""] * (len(header) - len(row)) for row in table]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_malformed":  # the soak's second load generator, in a child
        url, body, seconds, tool, rate = sys.argv[2:]
        found = run_load(url + "/predict", Path(body), "application/json", 1, float(seconds), tool, float(rate))
        print(json.dumps(found.__dict__))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per measurement")
    parser.add_argument("--soak", type=float, default=60, help="seconds of the soak (0 skips it)")
    parser.add_argument("--only", default="boost,transfer,segment,recommend,rl,soak", help="comma-separated parts")
    parser.add_argument("--mlflow-python", default=sys.executable, help="a Python that imports mlflow and lightgbm")
    args = parser.parse_args()
    tool = generator()
    parts = set(args.only.split(","))
    table: list[list[Any]] = []
    print(f"load generator: {tool}; load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        work = Path(tmp)
        if "boost" in parts:
            bench_boost(args, work, tool, table)
        if parts & {"transfer", "segment"}:
            bench_images(args, work, tool, table)
        if parts & {"recommend", "rl"}:
            bench_recommend_rl(args, work, tool, table)
        print_table(table)
        if args.soak > 0 and "soak" in parts:
            soak(args, work, tool)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
