"""`mlspec serve`'s /metrics exporter and request sample log, in-process on real sockets: the
counts a known load must give, bounded labels under hostile paths, and a log that stays within
its bounds."""

from __future__ import annotations

import http.client
import json
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import mlspec, tool
from prometheus_client.parser import text_string_to_metric_families
from test_serve_server import KNOWN, predict, train_iris

from mlspec.image.serve import Monitoring, Served, Server, load_model, make_server
from mlspec.image.serve_metrics import Metrics
from mlspec.image.serve_sample import SampleLog, kept_indexes


def start(served: Served, monitoring: Monitoring | None = None) -> tuple[Server, tuple[str, int]]:
    srv = make_server(served, "127.0.0.1", 0, quiet=True, monitoring=monitoring)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, ("127.0.0.1", srv.server_port)


def stop(srv: Server) -> None:
    srv.shutdown()
    srv.server_close()


def raw(addr: tuple[str, int], method: str, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(*addr, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def scrape(addr: tuple[str, int]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, ctype, body = raw(addr, "GET", "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode())
            for s in fam.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Served:
    return load_model(train_iris(tmp_path_factory.mktemp("metrics")))


def test_a_known_load_gives_known_counts(iris: Served) -> None:
    srv, addr = start(iris, Monitoring(version="1.2.0"))
    try:
        for row, _ in KNOWN * 4:  # 12 good requests: 4 of each species
            assert predict(addr, {"instances": [row]})[0] == 200
        assert predict(addr, {"instances": [[1, 2, 3]]})[0] == 422
        assert predict(addr, {"instances": [[1, 2, 3]]})[0] == 422
        assert predict(addr, b"{")[0] == 400
        assert raw(addr, "GET", "/healthz")[0] == 200
        assert raw(addr, "GET", "/predict")[0] == 405
        # hostile paths collapse to one bounded label; the raw text never reaches the output
        for path in ('/x"}\\evil', "/a" * 500, "/%0aINJECT%201", "/metricsX"):
            assert raw(addr, "GET", path)[0] == 404
        with socket.create_connection(addr, timeout=10) as sock:  # an unknown method: 501
            sock.sendall(b"BREW /predict HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 501")
        samples = scrape(addr)
        _, _, text = raw(addr, "GET", "/metrics")
    finally:
        stop(srv)
    req = "mlspec_http_requests_total"
    assert value(samples, req, route="/predict", method="POST", code="200") == 12
    assert value(samples, req, route="/predict", method="POST", code="422") == 2
    assert value(samples, req, route="/predict", method="POST", code="400") == 1
    assert value(samples, req, route="/predict", method="GET", code="405") == 1
    assert value(samples, req, route="/healthz", method="GET", code="200") == 1
    assert value(samples, req, route="other", method="GET", code="404") == 4
    assert value(samples, req, route="/predict", method="other", code="501") == 1
    assert {dict(k[1]).get("route") for k in samples if k[0] == req} == {
        "/predict", "/healthz", "other"}  # /metrics counts from its second scrape on
    lat = "mlspec_http_request_duration_seconds"
    assert value(samples, f"{lat}_count", route="/predict", method="POST") == 15
    assert value(samples, f"{lat}_bucket", route="/predict", method="POST", le="+Inf") == 15
    assert 0 < value(samples, f"{lat}_sum", route="/predict", method="POST") < 15
    for species in ("setosa", "versicolor", "virginica"):
        assert value(samples, "mlspec_predictions_total", **{"class": species}) == 4
    info = [dict(k[1]) for k in samples if k[0] == "mlspec_model_info"]
    assert info == [{"model": "model.pkl", "digest": f"sha256:{iris.sha256}",
                     "version": "1.2.0", "estimator": iris.metadata["class"]}]
    assert b"evil" not in text and b"INJECT" not in text and b"/a/a" not in text


def test_no_metrics_means_no_route_and_no_instrumentation(iris: Served) -> None:
    srv, addr = start(iris, Monitoring(metrics=False))
    try:
        assert srv.metrics is None
        status, _, body = raw(addr, "GET", "/metrics")
        assert status == 404 and "/metrics" not in json.loads(body)["error"].split(";")[1]
        assert predict(addr, {"instances": [KNOWN[0][0]]}) == (200, {"predictions": ["setosa"]})
    finally:
        stop(srv)


class Regressor:
    """A stand-in regressor: no classes_, predicts the first feature."""

    n_features_in_ = 2

    def predict(self, rows: list[list[float]]) -> list[float]:
        return [r[0] for r in rows]


def test_a_regressor_gets_a_histogram_of_predicted_values(tmp_path: Path) -> None:
    served = Served(Regressor(), tmp_path / "reg.pkl", "0" * 64, 2,
                    {"class": "Regressor", "feature_names": ["size", "age"]})
    log = tmp_path / "logs" / "sample.jsonl"
    srv, addr = start(served, Monitoring(sample_log=log, sample_rate=1.0))
    try:
        values = [-3.0, 0.0, 0.004, 7.0, 7.0, 12345.0, 1e9]
        assert predict(addr, {"instances": [[v, 1] for v in values]})[0] == 200
        samples = scrape(addr)
    finally:
        stop(srv)
    h = "mlspec_prediction_value"
    assert value(samples, f"{h}_count") == len(values)
    assert value(samples, f"{h}_bucket", le="0.0") == 2
    assert value(samples, f"{h}_bucket", le="10.0") == 5
    assert value(samples, f"{h}_bucket", le="+Inf") == 7
    assert not [k for k in samples if k[0] == "mlspec_predictions_total"]
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["inputs"], x["prediction"]) for x in lines] == [
        ({"size": v, "age": 1}, v) for v in values]
    assert all(isinstance(x["ts"], float) for x in lines)
    assert value(samples, "mlspec_sample_rows_total", outcome="written") in (0, len(values))


def test_a_regressor_exposes_sum_and_count_for_rates_and_averages(tmp_path: Path) -> None:
    """prometheus-client drops a histogram's `_sum` once a bucket bound is negative (a sum
    that can fall breaks rate()): the magnitudes by sign, two monotone `_sum`s, give it back."""
    served = Served(Regressor(), tmp_path / "reg.pkl", "0" * 64, 2,
                    {"class": "Regressor", "feature_names": ["size", "age"]})
    srv, addr = start(served)
    try:
        values = [-3.5, -0.5, 0.0, 2.0, 10.0, float("nan")]
        assert predict(addr, {"instances": [[v, 1] for v in values[:-1]]})[0] == 200
        samples = scrape(addr)
        _, _, text = raw(addr, "GET", "/metrics")
    finally:
        stop(srv)
    m = "mlspec_prediction_magnitude"
    assert value(samples, f"{m}_count", sign="positive") == 3  # 0 counts as positive
    assert value(samples, f"{m}_sum", sign="positive") == 12.0
    assert value(samples, f"{m}_count", sign="negative") == 2
    assert value(samples, f"{m}_sum", sign="negative") == 4.0  # magnitudes: never falls
    assert value(samples, "mlspec_prediction_value_count") == 5  # the histogram stays
    families = {f.name: f.type for f in text_string_to_metric_families(text.decode())}
    assert families[m] == "summary" and families["mlspec_prediction_value"] == "histogram"


def test_non_finite_predictions_stay_out_of_the_sums() -> None:
    metrics = Metrics(["/predict"], {"model": "m"}, None)
    metrics.predicted([1.0, float("nan"), float("inf"), float("-inf"), -2.0,
                       1e308, 1e308, -1e308])  # finite, but two overflow a sum
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(metrics.render().decode())
               for s in f.samples}
    assert value(samples, "mlspec_prediction_magnitude_sum", sign="positive") == 1.0
    assert value(samples, "mlspec_prediction_magnitude_sum", sign="negative") == 2.0
    assert value(samples, "mlspec_prediction_magnitude_count", sign="positive") == 1


def test_sample_log_is_random_rotated_and_bounded(iris: Served, tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    srv, addr = start(iris, Monitoring(sample_log=log, sample_rate=0.5, sample_max_bytes=4096))
    try:
        for _ in range(40):
            assert predict(addr, {"instances": [row for row, _ in KNOWN] * 10})[0] == 200
    finally:
        stop(srv)  # closing writes what is queued
    rotated = log.with_name(log.name + ".1")
    assert log.stat().st_size <= 4096 and rotated.stat().st_size <= 4096
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requests.jsonl", "requests.jsonl.1"]
    rows = [json.loads(x) for p in (rotated, log) for x in p.read_text().splitlines()]
    truth = {tuple(row): species for row, species in KNOWN}
    assert rows and all(truth[tuple(r["inputs"])] == r["prediction"] for r in rows)


def test_kept_indexes_draws_the_asked_fraction() -> None:
    rng = random.Random(7)
    kept = kept_indexes(100_000, 0.1, rng)
    assert kept == sorted(set(kept)) and kept[-1] < 100_000
    assert abs(len(kept) - 10_000) < 400  # 4 sigma
    assert kept_indexes(5, 1.0, rng) == [0, 1, 2, 3, 4]


def test_sample_log_skips_rows_over_the_bound_and_refuses_bad_options(tmp_path: Path) -> None:
    counts: dict[str, int] = {}

    def counted(outcome: str, n: int) -> None:
        counts[outcome] = counts.get(outcome, 0) + n

    log = SampleLog(tmp_path / "s.jsonl", 1.0, max_bytes=4096, max_row_bytes=200,
                    counted=counted)
    log.offer([[1.0] * 3, [2.0] * 100, [3.0]], ["a", "b", float("nan")])
    log.offer([[4.0]], ['"}\n{"inputs": 0, "prediction": "forged'])
    log.close()
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert [json.loads(x)["inputs"] for x in lines] == [[1.0] * 3, [4.0]]
    assert json.loads(lines[1])["prediction"].startswith('"}\n{')  # data, not a second row
    assert counts == {"written": 2, "skipped": 2}
    from mlspec.errors import MlspecError

    with pytest.raises(MlspecError, match="--sample-rate"):
        SampleLog(tmp_path / "x.jsonl", 0.0)
    with pytest.raises(MlspecError, match="cannot open the sample log"):
        SampleLog(tmp_path / "s.jsonl" / "inside-a-file", 0.5)


def test_console_script_sample_log_errors_are_diagnostics(tmp_path: Path) -> None:
    model = train_iris(tmp_path)
    (tmp_path / "file").write_text("x")
    res = mlspec("serve", str(model), "--port", "0", "--sample-log", "file/log.jsonl",
                 cwd=tmp_path, timeout=60)
    assert res.returncode == 2 and "[serve.sample-log]" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    res = mlspec("serve", str(model), "--sample-rate", "0", cwd=tmp_path, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr



def test_a_bad_request_line_is_counted_as_other_not_as_the_previous_route(iris: Served) -> None:
    srv, addr = start(iris)
    try:
        with socket.create_connection(addr, timeout=10) as sock:  # one keep-alive connection
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = b""
            while not first.endswith(b'{"status":"ok"}\n'):  # headers and body: two writes
                first += sock.recv(1000)
            assert first.startswith(b"HTTP/1.1 200")
            sock.sendall(b"GARBAGE\r\n\r\n")
            second = b""
            while chunk := sock.recv(1000):  # an error closes the connection
                second += chunk
            assert second.startswith(b"HTTP/1.1 400")
        samples = scrape(addr)
    finally:
        stop(srv)
    req = "mlspec_http_requests_total"
    assert value(samples, req, route="/healthz", method="GET", code="200") == 1
    assert value(samples, req, route="other", method="other", code="400") == 1
    assert value(samples, "mlspec_http_request_duration_seconds_count", route="other",
                 method="other") == 0  # never routed: counted, not timed


def test_a_hostile_version_label_is_escaped_and_bounded(iris: Served) -> None:
    hostile = 'v1"} mlspec_forged 1\n\\' * 20
    srv, addr = start(iris, Monitoring(version=hostile))
    try:
        samples = scrape(addr)  # parses: the exposition is intact
        _, _, text = raw(addr, "GET", "/metrics")
    finally:
        stop(srv)
    (info,) = [dict(k[1]) for k in samples if k[0] == "mlspec_model_info"]
    assert len(info["version"]) == 128 and info["version"].startswith('v1"} mlspec_forged')
    assert not [k for k in samples if k[0].startswith("mlspec_forged")]
    assert b"\nmlspec_forged" not in text


def test_a_full_queue_drops_rows_and_counts_them(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import mlspec.image.serve_sample as serve_sample

    monkeypatch.setattr(serve_sample, "QUEUE_ROWS", 5)
    counts: dict[str, int] = {}
    log = SampleLog(tmp_path / "s.jsonl", 1.0,
                    counted=lambda outcome, n: counts.__setitem__(outcome,
                                                                  counts.get(outcome, 0) + n))
    log.offer([[float(i)] for i in range(12)], list(range(12)))
    log.close()
    assert counts == {"dropped": 7, "written": 5}
    assert [json.loads(x)["prediction"] for x in
            (tmp_path / "s.jsonl").read_text().splitlines()] == [0, 1, 2, 3, 4]


def test_the_queue_bound_holds_when_many_threads_offer_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import collections

    import mlspec.image.serve_sample as serve_sample

    class SlowLen(collections.deque):  # type: ignore[type-arg]
        """A thread switch between measuring the room and taking it, every time."""

        def __len__(self) -> int:
            n = super().__len__()
            time.sleep(0.01)
            return n

    monkeypatch.setattr(serve_sample, "FLUSH_SECONDS", 3600)  # the writer waits: queue fills
    monkeypatch.setattr(serve_sample, "QUEUE_ROWS", 100)
    log = SampleLog(tmp_path / "s.jsonl", 1.0)
    log._queue = SlowLen()
    start = threading.Barrier(8)

    def offer() -> None:
        start.wait()
        log.offer([[1.0]] * 60, [0] * 60)

    threads = [threading.Thread(target=offer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert collections.deque.__len__(log._queue) == 100  # full, never past the bound
    log.close()


def test_a_sample_log_moved_away_is_started_again(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    log = SampleLog(path, 1.0, max_bytes=1024)
    log._write([b'{"a":1}\n'] * 10)
    path.rename(tmp_path / "shipped.jsonl")  # log shipping takes the file
    log._write([b'{"b":2}\n'] * 200)  # past max_bytes: the rotation finds no file to rename
    log._write([b'{"c":3}\n'] * 3)
    log.close()
    assert path.exists() and path.read_text().count('{"c":3}') == 3
    files = [f.read_text() for f in sorted(tmp_path.iterdir())]
    assert sum(f.count('{"b":2}') for f in files) == 200  # none dropped


MEAN = ('(sum(rate(mlspec_prediction_magnitude_sum{sign="positive"}[2m]))'
        ' - sum(rate(mlspec_prediction_magnitude_sum{sign="negative"}[2m])))'
        ' / sum(rate(mlspec_prediction_magnitude_count[2m]))')


def test_promql_of_the_readme_gives_the_mean_prediction(tmp_path: Path) -> None:
    """promtool's PromQL engine over scrapes of the exporter a minute apart, each after the
    same batch: the README's expression gives the batch's mean (negative predictions in it)."""
    promtool = tool("promtool")
    metrics = Metrics(["/predict"], {"model": "m"}, None)
    scrapes = []
    for _ in range(5):
        metrics.predicted([4.0, -1.0, -7.0, 0.0])  # mean -1
        scrapes.append({(s.name, s.labels.get("sign", "")): s.value
                        for f in text_string_to_metric_families(metrics.render().decode())
                        for s in f.samples if f.name == "mlspec_prediction_magnitude"})
    series = [{"series": f'{name}{{sign="{sign}"}}',
               "values": " ".join(str(scr[(name, sign)]) for scr in scrapes)}
              for (name, sign) in scrapes[0] if not name.endswith("_created")]
    test = {"tests": [{"interval": "1m", "input_series": series, "promql_expr_test": [
        {"expr": MEAN, "eval_time": "4m", "exp_samples": [{"labels": "{}", "value": -1.0}]}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    res = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert MEAN in Path(__file__).parents[2].joinpath("README.md").read_text()
