"""Load test of `mlspec serve`: N requests from C concurrent keep-alive clients, on 127.0.0.1.

Trains a small iris model in a temp dir, starts the real console script (`mlspec serve`),
sends POST /predict with one iris row per request, and reports p50/p95/p99 latency and
requests/second. Exits 1 on any error or non-200 answer.

    .venv/bin/python bench/serve_load.py [--requests 2000] [--clients 8] [--batch 1]
        [--estimator forest|tree]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1, help="rows per request")
    ap.add_argument("--estimator", choices=("forest", "tree"), default="forest",
                    help="the example's random forest (100 trees), or one decision tree to "
                    "show the server's own overhead")
    args = ap.parse_args()
    args.clients = max(1, min(args.clients, 64))  # bounded: this is a local benchmark
    exe = Path(sys.executable).parent / "mlspec"
    with tempfile.TemporaryDirectory() as tmp:
        model = train(Path(tmp), args.estimator)
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
    return 1 if errors or len(lat) != args.requests else 0


if __name__ == "__main__":
    sys.exit(main())
