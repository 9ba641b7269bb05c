"""A real Prometheus (Debian's /usr/bin/prometheus; .ci/run installs it) scrapes a real
`mlspec serve` after a known load, and PromQL over its HTTP API gives back that load: request
counts by code, errors, the latency histogram and a quantile of it, predictions, the model's
digest. Skips without prometheus; fails under MLSPEC_REQUIRE_TOOLS=1."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import tool
from test_serve_server import KNOWN, free_port, mlspec_cmd, predict, request, train_iris

GOOD, BAD_ROWS, NO_ROUTE = 20, 3, 2


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _wait(what: str, check: Any, proc: subprocess.Popen[bytes], log: Path,
          timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
            if got:
                return got
        except (OSError, ValueError, KeyError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what}: gave up (exit {proc.poll()}); log:\n"
                        + log.read_text(errors="replace")[-3000:])
        time.sleep(0.2)


@pytest.fixture
def prometheus() -> str:
    """Found before anything starts: a missing prometheus skips (or fails in CI) at once."""
    return tool("prometheus")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    model = train_iris(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*mlspec_cmd(), "serve", str(model), "--port", str(port),
                                 "--model-version", "9.9.9", "--sample-log",
                                 "logs/requests.jsonl", "--sample-rate", "1"],
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        _wait("mlspec serve up", lambda: request(("127.0.0.1", port), "GET", "/healthz")[0]
              == 200, proc, log)
        yield port, model
    finally:
        _stop(proc)


def test_prometheus_scrapes_the_known_load(prometheus: str, served: tuple[int, Path],
                                           tmp_path: Path) -> None:
    port, model = served
    web = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                      "scrape_configs:\n"
                      "  - job_name: mlspec\n"
                      f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n")
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([prometheus, f"--config.file={config}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{web}"],
                                stdout=out, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{web}/api/v1"

    def query(promql: str) -> list[dict[str, Any]]:
        doc = _get(f"{api}/query?" + urllib.parse.urlencode({"query": promql}))
        assert doc["status"] == "success", doc
        return list(doc["data"]["result"])

    def scalar(promql: str) -> float:
        result = query(promql)
        assert len(result) == 1, (promql, result)
        return float(result[0]["value"][1])

    try:
        _wait("target up", lambda: [t for t in _get(f"{api}/targets")["data"]["activeTargets"]
                                    if t["health"] == "up"], proc, log)
        addr = ("127.0.0.1", port)
        for i in range(GOOD):
            assert predict(addr, {"instances": [KNOWN[i % 3][0]]})[0] == 200
        for _ in range(BAD_ROWS):
            assert predict(addr, {"instances": [[1, 2]]})[0] == 422
        for _ in range(NO_ROUTE):
            assert request(addr, "GET", "/no/such/route")[0] == 404
        done = time.time()
        # a scrape that began after the load: its `up` sample is stamped later than `done`
        _wait("a scrape after the load",
              lambda: scalar('timestamp(up{job="mlspec"})') > done + 0.01, proc, log)

        by_code = {r["metric"]["code"]: float(r["value"][1]) for r in query(
            'sum by (code) (mlspec_http_requests_total{route="/predict",method="POST"})')}
        assert by_code == {"200": GOOD, "422": BAD_ROWS}
        assert scalar('sum(mlspec_http_requests_total{code=~"4..|5.."})') == BAD_ROWS + NO_ROUTE
        assert scalar('sum(mlspec_http_requests_total{route="other"})') == NO_ROUTE
        lat = 'mlspec_http_request_duration_seconds{route="/predict",method="POST"}'
        n = GOOD + BAD_ROWS
        assert scalar(lat.replace("seconds{", "seconds_count{")) == n
        assert scalar(lat.replace("seconds{", "seconds_bucket{").replace("}", ',le="+Inf"}')) == n
        p50 = scalar("histogram_quantile(0.5, sum by (le) ("
                     + lat.replace("seconds{", "seconds_bucket{") + "))")
        assert math.isfinite(p50) and 0 < p50 < 5
        assert scalar("sum(mlspec_predictions_total)") == GOOD
        assert scalar('mlspec_predictions_total{class="setosa"}') == math.ceil(GOOD / 3)
        info = query("mlspec_model_info")
        assert len(info) == 1
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        assert info[0]["metric"]["digest"] == f"sha256:{digest}"
        assert info[0]["metric"]["version"] == "9.9.9"
        # the console script's sample log: at rate 1, every answered row, written within 0.5 s
        sample = tmp_path / "logs" / "requests.jsonl"
        _wait("the sample log", lambda: len(sample.read_text().splitlines()) >= GOOD, proc, log)
        rows = [json.loads(x) for x in sample.read_text().splitlines()]
        assert [(r["inputs"], r["prediction"]) for r in rows] == [
            (KNOWN[i % 3][0], KNOWN[i % 3][1]) for i in range(GOOD)]
    finally:
        _stop(proc)
