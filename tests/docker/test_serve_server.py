"""`mlspec serve`: the HTTP server in-process on real sockets (error handling, keep-alive,
lineage from the lock), and the real console script end to end."""

from __future__ import annotations

import http.client
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN

from mlspec.errors import MlspecError
from mlspec.image.serve import MAX_BODY, load_model, make_server
from mlspec.run.lock import Lock, StepLock, write_lock

# Known iris rows (sepal length, sepal width, petal length, petal width) and their species.
KNOWN = [([5.1, 3.5, 1.4, 0.2], "setosa"), ([7.0, 3.2, 4.7, 1.4], "versicolor"),
         ([6.3, 3.3, 6.0, 2.5], "virginica")]


def record_outs(root: Path, outs: dict[str, str], step: str = "train") -> None:
    """Write a real mlspec.lock at root recording outs (path -> "sha256:<hex>") for step,
    and mark root as a repository (the lock search stops there)."""
    (root / ".git").mkdir(exist_ok=True)
    write_lock(root, Lock(steps={step: StepLock(key="sha256:" + "1" * 64, command="train",
                                                outs=outs, params={"n_estimators": 20})}))


def file_hash(path: Path) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def train_iris(folder: Path, record: bool = True) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    iris = load_iris()
    names = [str(iris.target_names[t]) for t in iris.target]
    model = RandomForestClassifier(n_estimators=20, random_state=0, n_jobs=1)
    model.fit(iris.data, names)
    path = folder / "model" / "model.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(model, protocol=5))
    if record:
        record_outs(folder, {"model/model.pkl": file_hash(path)})
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_iris(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def server(model_path: Path) -> Iterator[tuple[str, int]]:
    srv = make_server(load_model(model_path), "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", srv.server_port
    srv.shutdown()
    srv.server_close()


def request(addr: tuple[str, int], method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(*addr, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        assert resp.getheader("Content-Type") == "application/json"
        return resp.status, json.loads(data)
    finally:
        conn.close()


def predict(addr: tuple[str, int], payload: Any) -> tuple[int, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return request(addr, "POST", "/predict", body, {"Content-Type": "application/json"})


def test_predict_known_rows(server: tuple[str, int]) -> None:
    status, data = predict(server, {"instances": [row for row, _ in KNOWN]})
    assert status == 200
    assert data == {"predictions": [species for _, species in KNOWN]}


def test_healthz_and_metadata(server: tuple[str, int], model_path: Path) -> None:
    assert request(server, "GET", "/healthz") == (200, {"status": "ok"})
    status, meta = request(server, "GET", "/metadata")
    assert status == 200
    import hashlib

    assert meta["sha256"] == hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert meta["n_features_in"] == 4
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    assert meta["class"].endswith("RandomForestClassifier")
    assert meta["lineage"]["step"] == "train" and meta["lineage"]["matches_lock"] is True


@pytest.mark.parametrize(("payload", "status", "message"), [
    (b'{"instances": [[5.1, 3.5', 400, "malformed JSON"),
    (b"\xff\xfe", 400, "malformed JSON"),
    (b'{"instances": [[1, 2, 3, NaN]]}', 400, "NaN"),
    (b"[[1, 2, 3, 4]]", 400, "must be a JSON object"),
    (b'{"rows": [[1, 2, 3, 4]]}', 400, 'no key "instances" (its keys: "rows")'),
    (b'{"data": [[1, 2, 3, 4]], "x": 1}', 400, 'no key "instances" (its keys: "data", "x")'),
    (b'{"instances": []}', 400, "non-empty"),
    (b'{"instances": [1, 2, 3, 4]}', 400, "not a list"),
    (b'{"instances": [[1, 2, 3]]}', 422, "the model expects 4"),
    (b'{"instances": [[1, 2, 3, 4], [1, 2, 3, 4, 5]]}', 422, "instance 1 has 5 features"),
    (b'{"instances": [[1, 2, "x", 4]]}', 422, "non-numeric"),
    (b'{"instances": [[1, 2, true, 4]]}', 422, "non-numeric"),
])
def test_bad_requests_get_4xx_and_server_keeps_serving(
        server: tuple[str, int], payload: bytes, status: int, message: str) -> None:
    got, data = predict(server, payload)
    assert got == status and data["status"] == status
    assert message in data["error"]
    assert predict(server, {"instances": [KNOWN[0][0]]}) == (200, {"predictions": ["setosa"]})


def test_body_over_10_mb_is_refused_without_reading_it(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode() + b"[" * 65536)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in head
    assert "over the" in json.loads(body)["error"]
    # a body of exactly 10 MB is read (and rejected as a bad document, not as too large)
    status, data = predict(server, b" " * MAX_BODY)
    assert status == 400 and "malformed JSON" in data["error"]
    assert request(server, "GET", "/healthz")[0] == 200


def test_missing_length_routes_and_methods(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 411")
    assert request(server, "GET", "/nope")[0] == 404
    status, _ = request(server, "GET", "/predict")
    assert status == 405
    assert request(server, "POST", "/healthz", b"{}")[0] == 405
    assert request(server, "PUT", "/predict", b"{}")[0] == 405


def test_keep_alive_many_requests_one_connection(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=10)
    body = json.dumps({"instances": [KNOWN[2][0]]}).encode()
    for _ in range(50):
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read()) == {"predictions": ["virginica"]}
    conn.close()


def test_lineage_from_the_lock_beside_the_model(tmp_path: Path) -> None:
    path = train_iris(tmp_path, record=False)
    (tmp_path / ".git").mkdir()
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "mlspec.lock").write_text(
        "# mlspec.lock: written by `mlspec run`; commit it. Do not edit by hand.\n"
        "steps:\n"
        "  evaluate:\n"
        "    metrics:\n"
        "      f1_macro: 0.97\n"
        "    outs:\n"
        "      metrics.json: \"sha256:" + "0" * 64 + "\"\n"
        "  train:\n"
        "    outs:\n"
        f"      model/model.pkl: \"sha256:{digest}\"\n"
        "    params:\n"
        "      n_estimators: 20\n"
        "version: 1\n")
    lineage = load_model(path).metadata["lineage"]
    assert lineage["step"] == "train"
    assert lineage["params"] == {"n_estimators": 20}
    assert lineage["metrics"] == {"f1_macro": 0.97}
    assert lineage["matches_lock"] is True


def test_unloadable_model_is_a_diagnostic(tmp_path: Path) -> None:
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(MlspecError) as err:
        load_model(bad, allow_unlocked=True)
    assert "cannot load the model" in str(err.value)
    with pytest.raises(MlspecError, match="not found"):
        load_model(tmp_path / "missing.pkl")
    (tmp_path / "obj.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(MlspecError, match="no predict"):
        load_model(tmp_path / "obj.pkl", allow_unlocked=True)


def mlspec_cmd() -> list[str]:
    exe = BIN / "mlspec"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mlspec"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_console_script_serves_joblib_and_stops_on_sigterm(tmp_path: Path) -> None:
    import joblib

    model = pickle.loads(train_iris(tmp_path).read_bytes())
    joblib.dump(model, tmp_path / "model.joblib", compress=3)
    record_outs(tmp_path, {"model.joblib": file_hash(tmp_path / "model.joblib")})
    port = free_port()
    exe = BIN / "mlspec"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlspec"]
    proc = subprocess.Popen([*cmd, "serve", "model.joblib", "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, data = predict(("127.0.0.1", port), {"instances": [KNOWN[1][0]]})
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert (status, data) == (200, {"predictions": ["versicolor"]})
        # the port is taken now: a second server fails with a diagnostic, not a traceback
        res = subprocess.run([*cmd, "serve", "model.joblib", "--port", str(port)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and "[serve.listen]" in res.stderr
        assert "Traceback" not in res.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in err


class Echo:
    """A stand-in estimator that shows which rows reached predict, and how many at once."""

    n_features_in_ = 2

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, rows: list[list[float]]) -> list[float]:
        self.calls.append(len(rows))
        time.sleep(0.005)  # slow enough that concurrent requests queue up behind it
        if any(r[0] < 0 for r in rows):
            raise ValueError("negative input")
        return [r[0] * 1000 + r[1] for r in rows]


def test_concurrent_requests_are_batched_without_mixing_answers(tmp_path: Path) -> None:
    from mlspec.image.serve import Served

    echo = Echo()
    srv = make_server(Served(echo, tmp_path / "m.pkl", "0" * 64, 2), "127.0.0.1", 0, quiet=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    addr = ("127.0.0.1", srv.server_port)
    failures: list[str] = []

    def client(k: int) -> None:
        for i in range(20):
            rows = [[k, i], [k, i + 100]]
            if k == 0 and i % 5 == 0:  # a request the model rejects, amid good ones
                status, data = predict(addr, {"instances": [[-1, i]]})
                if status != 422 or "negative input" not in data["error"]:
                    failures.append(f"bad request got {status} {data}")
                continue
            status, data = predict(addr, {"instances": rows})
            if (status, data) != (200, {"predictions": [k * 1000 + i, k * 1000 + i + 100]}):
                failures.append(f"client {k} request {i}: {status} {data}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    srv.shutdown()
    srv.server_close()
    assert failures == []
    assert max(echo.calls) > 2  # several requests shared one predict call
