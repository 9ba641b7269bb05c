"""Load test of `mlspec serve`: N requests from C concurrent keep-alive clients, on 127.0.0.1,
then bursts of B connections opened at the same instant.

Trains a small iris model in a temp dir (recorded in an mlspec.lock there, as `mlspec run`
would), starts the real console script (`mlspec serve`), sends POST /predict with one iris
row per request, and reports p50/p95/p99 latency and requests/second. Then, R times, B
threads released together each open a new connection and send one POST /predict
(`Connection: close`, 5 s timeout): it reports the fraction answered with 200 and the p50/p95
latency from connect to the last byte. Exits 1 on any error or non-200 answer.

    .venv/bin/python bench/serve_load.py [--requests 2000] [--clients 8] [--batch 1]
        [--estimator forest|tree] [--burst 100] [--rounds 5]

With --compare, the cost of monitoring instead: three servers of the same model at once,
`--no-metrics`, the default (/metrics exporter on), and the exporter plus `--sample-log` at
rate 0.1; R rounds, each sending the same load to each server in turn (the order rotates
every round), so that noise from a shared machine hits all three alike. It prints each
round's p50 per server, and the median over rounds of the paired ratios p50(server) /
p50(--no-metrics) (budget: the exporter under 1.05).

    .venv/bin/python bench/serve_load.py --compare [--requests 400] [--rounds 9]
        [--estimator tree|forest]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def train(folder: Path, estimator: str) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    iris = load_iris()
    model: Any = (DecisionTreeClassifier(random_state=0) if estimator == "tree" else
                  RandomForestClassifier(n_estimators=100, max_depth=5, random_state=42,
                                         n_jobs=1))
    model.fit(iris.data, [str(iris.target_names[t]) for t in iris.target])
    path = folder / "model.pkl"
    path.write_bytes(pickle.dumps(model, protocol=5))
    return path


def record(model: Path) -> None:
    """An mlspec.lock beside the model recording its hash: `mlspec serve` loads only that."""
    from mlspec.run.hashing import sha256_bytes
    from mlspec.run.lock import Lock, StepLock, write_lock

    (model.parent / ".git").mkdir(exist_ok=True)  # the lock search stops at this "repository"
    write_lock(model.parent, Lock(steps={"train": StepLock(
        outs={model.name: sha256_bytes(model.read_bytes())})}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited before it was up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not come up")


def start_server(exe: Path, model: Path, extra: list[str]) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    proc = subprocess.Popen(
        [str(exe), "serve", str(model), "--port", str(port), "--host", "127.0.0.1", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_up(port, proc)
    return port, proc


def load(port: int, requests: int, clients: int, body: bytes) -> tuple[list[float], list[str]]:
    """`requests` POST /predict from `clients` keep-alive clients: (latencies, errors)."""
    per = [requests // clients + (i < requests % clients) for i in range(clients)]
    latencies: list[float] = []
    errors: list[str] = []
    threads = [threading.Thread(target=client, args=(port, n, body, latencies, errors))
               for n in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def instrument_cost(folder: Path, n: int = 20000) -> tuple[float, float]:
    """In-process, without sockets: microseconds per /predict of the exporter's bookkeeping
    (labels, counter, histogram, class count) and of the sample log's draw at rate 0.1."""
    from mlspec.image.serve_metrics import Metrics
    from mlspec.image.serve_sample import SampleLog

    metrics = Metrics(["/predict"], {"model": "m"}, ["setosa", "versicolor", "virginica"])
    log = SampleLog(folder / "cost.jsonl", 0.1)
    rows, preds = [[5.1, 3.5, 1.4, 0.2]], ["setosa"]
    start = time.perf_counter()
    for _ in range(n):
        route, method = metrics.labels("/predict", "POST")
        metrics.request(route, method, 200, 0.001)
        metrics.predicted(preds)
    exporter = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for _ in range(n):
        log.offer(rows, preds)
    sampling = (time.perf_counter() - start) / n * 1e6
    log.close()
    return exporter, sampling


def compare(exe: Path, model: Path, args: argparse.Namespace) -> int:
    """Paired, interleaved rounds against --no-metrics, the exporter, exporter + sample log."""
    sample = model.parent / "sample.jsonl"
    variants = {"no-metrics": ["--no-metrics"], "metrics": [],
                "metrics+sample": ["--sample-log", str(sample), "--sample-rate", "0.1"]}
    procs: list[subprocess.Popen[bytes]] = []
    p50: dict[str, list[float]] = {name: [] for name in variants}
    failed: list[str] = []
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * args.batch}).encode()
    try:
        ports = {}
        for name, extra in variants.items():
            ports[name], proc = start_server(exe, model, extra)
            procs.append(proc)
        names = list(variants)
        for name in names:  # warm-up: first-call costs out of the measured rounds
            load(ports[name], min(200, args.requests), args.clients, body)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                lat, errors = load(ports[name], args.requests, args.clients, body)
                failed += errors
                p50[name].append(statistics.median(lat))
            print(f"round {r + 1}: " + ", ".join(f"{n} p50 {p50[n][-1] * 1000:.2f} ms"
                                                 for n in names), flush=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    base = p50["no-metrics"]
    print(f"mlspec serve ({args.estimator}), {args.rounds} rounds x {args.requests} requests, "
          f"{args.clients} clients, batch {args.batch}; median over rounds:")
    for name in names:
        ratios = [a / b for a, b in zip(p50[name], base, strict=True)]
        print(f"  {name:15} p50 {statistics.median(p50[name]) * 1000:.2f} ms  "
              f"ratio to no-metrics {statistics.median(ratios):.3f} "
              f"(rounds: {' '.join(f'{x:.2f}' for x in ratios)})")
    exporter, sampling = instrument_cost(model.parent)
    print(f"  in-process cost per /predict: exporter {exporter:.1f} us, sample log draw "
          f"{sampling:.1f} us (vs the no-metrics p50 {statistics.median(base) * 1e6:.0f} us: "
          f"{exporter / statistics.median(base) / 1e6:.2%} and "
          f"{sampling / statistics.median(base) / 1e6:.2%})")
    lines = len(sample.read_text().splitlines()) if sample.exists() else 0
    total = args.requests * args.rounds + min(200, args.requests)
    print(f"  sample log: {lines} rows of {total * args.batch} answered ({lines / total:.1%})")
    for e in failed[:5]:
        print("  error:", e)
    return 1 if failed else 0


def client(port: int, count: int, body: bytes, latencies: list[float], errors: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    for _ in range(count):
        start = time.perf_counter()
        try:
            conn.request("POST", "/predict", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or "predictions" not in json.loads(data):
                errors.append(f"{resp.status}: {data[:200]!r}")
        except (OSError, http.client.HTTPException, ValueError) as err:
            errors.append(f"{type(err).__name__}: {err}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies.append(time.perf_counter() - start)
    conn.close()


def burst_one(port: int, body: bytes, gate: threading.Barrier, out: list[float | None]) -> None:
    """Wait at the gate with the others, then one fresh connection and one request."""
    request = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               b"Content-Type: application/json\r\n"
               + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    gate.wait()
    start = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        ok = reply.startswith(b"HTTP/1.1 200") and b"predictions" in reply
    except OSError:
        ok = False
    out.append(time.perf_counter() - start if ok else None)


def burst(port: int, body: bytes, size: int, rounds: int) -> tuple[int, int, list[float]]:
    """`rounds` bursts of `size` simultaneous connections: (answered, sent, latencies)."""
    results: list[float | None] = []
    for _ in range(rounds):
        gate = threading.Barrier(size)
        threads = [threading.Thread(target=burst_one, args=(port, body, gate, results))
                   for _ in range(size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.5)  # let the server's connection threads finish between bursts
    answered = [r for r in results if r is not None]
    return len(answered), len(results), sorted(answered)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1, help="rows per request")
    ap.add_argument("--estimator", choices=("forest", "tree"), default="forest",
                    help="the example's random forest (100 trees), or one decision tree to "
                    "show the server's own overhead")
    ap.add_argument("--burst", type=int, default=100,
                    help="connections opened at the same instant (0: no burst)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="bursts to send (with --compare: paired rounds)")
    ap.add_argument("--compare", action="store_true",
                    help="the cost of /metrics and of the sample log: paired rounds against "
                    "--no-metrics")
    args = ap.parse_args()
    args.burst = max(0, min(args.burst, 500))
    args.clients = max(1, min(args.clients, 64))  # bounded: this is a local benchmark
    exe = Path(sys.executable).parent / "mlspec"
    with tempfile.TemporaryDirectory() as tmp:
        model = train(Path(tmp), args.estimator)
        record(model)
        if args.compare:
            return compare(exe, model, args)
        port = free_port()
        proc = subprocess.Popen(
            [str(exe), "serve", str(model), "--port", str(port), "--host", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            wait_up(port, proc)
            body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * args.batch}).encode()
            per = [args.requests // args.clients + (i < args.requests % args.clients)
                   for i in range(args.clients)]
            latencies: list[float] = []
            errors: list[str] = []
            threads = [threading.Thread(target=client, args=(port, n, body, latencies, errors))
                       for n in per]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            got, sent, burst_lat = (burst(port, body, args.burst, args.rounds) if args.burst
                                    else (0, 0, []))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100)
    print(f"mlspec serve ({args.estimator}): {len(lat)} requests, {args.clients} clients, "
          f"batch {args.batch}: "
          f"{len(lat) / wall:.0f} req/s, p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, "
          f"p99 {q[98] * 1000:.1f} ms, errors {len(errors)}")
    for e in errors[:5]:
        print("  error:", e)
    if sent:
        bq = statistics.quantiles(burst_lat, n=100) if len(burst_lat) > 1 else [0.0] * 99
        print(f"burst: {args.rounds} x {args.burst} simultaneous connections: answered "
              f"{got}/{sent} ({got / sent:.0%}), p50 {bq[49] * 1000:.1f} ms, "
              f"p95 {bq[94] * 1000:.1f} ms")
    return 1 if errors or len(lat) != args.requests or got != sent else 0


if __name__ == "__main__":
    sys.exit(main())
