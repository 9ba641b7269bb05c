"""`mlspec serve MODEL`: a small HTTP server for scikit-learn models (standard library only).

    POST /predict   {"instances": [[5.1, 3.5, 1.4, 0.2], ...]}  ->  {"predictions": ["setosa", ...]}
    GET  /healthz   {"status": "ok"}
    GET  /metadata  the model file's hash, class, feature count, classes, and its lineage from
                    the mlspec.lock found beside it (params, metrics, out hashes)

Predictions run on one worker thread that batches concurrent requests into one `predict` call
(see Batcher). Bad requests (malformed JSON, wrong shape, wrong feature count, a body over
10 MB) get a 4xx JSON error `{"error": ..., "status": ...}` and the server keeps serving.

The model file is trusted: it is the repository's own artifact, produced by its own training
step and recorded in its lock. Unpickling runs code, so never point this at a file from
elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import math
import queue
import signal
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError, Outcome

MAX_BODY = 10 * 1024 * 1024
MAX_INSTANCES = 100_000


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Served:
    """The loaded model and what /metadata reports about it."""

    model: Any
    path: Path
    sha256: str
    n_features: int | None
    metadata: dict[str, Any] = field(default_factory=dict)


def load_model(path: Path) -> Served:
    """Load a pickle or joblib file (a trusted artifact of this repository)."""
    if not path.is_file():
        raise MlspecError([Diagnostic(str(path), 0, 0, "model file not found", "serve.model",
                                      "train it first: mlspec run")])
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        model = _unpickle(path, data)
    except Exception as err:  # any unpickling failure is a bad model file
        raise MlspecError([Diagnostic(str(path), 0, 0,
                                      f"cannot load the model: {type(err).__name__}: {err}",
                                      "serve.model", "a pickle or joblib file of a fitted "
                                      "scikit-learn estimator")]) from None
    if not callable(getattr(model, "predict", None)):
        raise MlspecError([Diagnostic(str(path), 0, 0,
                                      f"{type(model).__name__} has no predict() method",
                                      "serve.model", "serve a fitted scikit-learn estimator")])
    n = getattr(model, "n_features_in_", None)
    n_features = int(n) if n is not None else None
    meta: dict[str, Any] = {
        "model": path.name,
        "sha256": digest,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "n_features_in": n_features,
    }
    classes = getattr(model, "classes_", None)
    if classes is not None:
        meta["classes"] = _jsonable(classes)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        meta["feature_names"] = _jsonable(names)
    meta["lineage"] = lineage(path, digest)
    return Served(model, path, digest, n_features, meta)


def _unpickle(path: Path, data: bytes) -> Any:
    import pickle

    if path.suffix in (".pkl", ".pickle"):
        try:
            return pickle.loads(data)  # trusted: the repository's own artifact
        except pickle.UnpicklingError:
            pass
    import joblib

    return joblib.load(path)


def find_lock(model_path: Path) -> Path | None:
    """The mlspec.lock of the repository the model belongs to: beside it or in a parent."""
    for folder in [model_path.resolve().parent, *model_path.resolve().parents]:
        candidate = folder / layout.LOCK
        if candidate.is_file():
            return candidate
    return None


def lineage(model_path: Path, digest: str) -> dict[str, Any] | None:
    """Params, metrics and out hashes from the lock, for the step that produced the model."""
    lock_path = find_lock(model_path)
    if lock_path is None:
        return None
    try:
        from ruamel.yaml import YAML

        doc = YAML(typ="safe").load(lock_path.read_text(encoding="utf-8"))
    except Exception as err:
        return {"lock": "mlspec.lock", "error": f"unreadable lock: {type(err).__name__}"}
    steps = doc.get("steps") if isinstance(doc, dict) else None
    if not isinstance(steps, dict):
        return {"lock": "mlspec.lock", "error": "the lock has no steps"}
    rel = model_path.resolve().relative_to(lock_path.parent).as_posix()
    producer, metrics = None, {}
    for name, entry in steps.items():
        if not isinstance(entry, dict):
            continue
        if rel in _out_hashes(entry):
            producer = name
        if isinstance(entry.get("metrics"), dict):
            metrics.update(entry["metrics"])
    out: dict[str, Any] = {"lock": "mlspec.lock", "step": producer, "metrics": metrics}
    if producer is not None:
        entry = steps[producer]
        outs = _out_hashes(entry)
        out["params"] = entry.get("params") or {}
        out["outs"] = outs
        recorded = str(outs.get(rel, ""))
        out["matches_lock"] = recorded.removeprefix("sha256:") == digest
    return out


def _out_hashes(entry: dict[str, Any]) -> dict[str, Any]:
    outs = entry.get("outs")
    if isinstance(outs, dict):
        return {str(k): (v.get("sha256") or v.get("hash") if isinstance(v, dict) else v)
                for k, v in outs.items()}
    if isinstance(outs, list):
        return {str(o.get("path")): o.get("sha256") or o.get("hash")
                for o in outs if isinstance(o, dict) and "path" in o}
    return {}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def parse_instances(body: bytes, n_features: int | None) -> list[list[float]]:
    """Validate a /predict body; raise BadRequest with the status and a readable reason."""
    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError) as err:
        raise BadRequest(400, f"malformed JSON: {err}") from None
    if not isinstance(doc, dict) or "instances" not in doc:
        raise BadRequest(400, 'the body must be an object: {"instances": [[...], ...]}')
    rows = doc["instances"]
    if not isinstance(rows, list) or not rows:
        raise BadRequest(400, "'instances' must be a non-empty list of rows")
    if len(rows) > MAX_INSTANCES:
        raise BadRequest(413, f"at most {MAX_INSTANCES} instances per request")
    width = n_features
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise BadRequest(400, f"instance {i} is not a list of numbers")
        if width is None:
            width = len(row)
        if len(row) != width:
            expected = "the model expects" if n_features is not None else "instance 0 has"
            raise BadRequest(422, f"instance {i} has {len(row)} features; {expected} {width}")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise BadRequest(422, f"instance {i} has a non-numeric value: {v!r}")
    return rows


class _Pending:
    __slots__ = ("done", "error", "result", "rows")

    def __init__(self, rows: list[list[float]]):
        self.rows = rows
        self.done = threading.Event()
        self.result: list[Any] = []
        self.error: BaseException | None = None


class Batcher:
    """Runs every prediction on one worker thread, batching the requests that queue up while
    it is busy into one `predict` call (no added wait: a lone request runs at once). Under
    concurrency this amortises scikit-learn's per-call overhead; models need not be
    thread-safe. A failing batch is retried request by request, so one bad request fails
    alone."""

    def __init__(self, model: Any, max_rows: int = 4096):
        self.model = model
        self.max_rows = max_rows
        self.queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="mlspec-predict", daemon=True)
        self.thread.start()

    def predict(self, rows: list[list[float]], timeout: float = 120) -> list[Any]:
        item = _Pending(rows)
        self.queue.put(item)
        if not item.done.wait(timeout):
            raise TimeoutError("prediction timed out")
        if item.error is not None:
            raise item.error
        return item.result

    def close(self) -> None:
        self.queue.put(None)

    def _loop(self) -> None:
        while (first := self.queue.get()) is not None:
            batch, n = [first], len(first.rows)
            while n < self.max_rows:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)
                    break
                batch.append(item)
                n += len(item.rows)
            self._run(batch)

    def _run(self, batch: list[_Pending]) -> None:
        try:
            out = _jsonable(self.model.predict([r for item in batch for r in item.rows]))
            start = 0
            for item in batch:
                item.result = out[start:start + len(item.rows)]
                start += len(item.rows)
        except Exception as err:
            if len(batch) > 1:
                for item in batch:
                    self._run([item])
                return
            batch[0].error = err
        for item in batch:
            item.done.set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlspec-serve"
    timeout = 30  # a stalled client cannot hold a thread for ever
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    served: Served  # set on the subclass made by make_server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._json(200, {"status": "ok"})
        elif path == "/metadata":
            self._json(200, self.served.metadata)
        elif path == "/predict":
            self._error(405, "use POST /predict", allow="POST")
        else:
            self._error(404, f"no route {path}; try POST /predict, GET /healthz, GET /metadata")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/predict":
            if path in ("/healthz", "/metadata"):
                self._error(405, f"use GET {path}", allow="GET")
            else:
                self._error(404, f"no route {path}")
            return
        try:
            body = self._body()
            rows = parse_instances(body, self.served.n_features)
        except BadRequest as bad:
            self._error(bad.status, bad.message)
            return
        try:
            predictions = self.server.batcher.predict(rows)  # type: ignore[attr-defined]
        except ValueError as err:  # scikit-learn's input validation
            self._error(422, f"the model rejected the input: {err}")
            return
        except Exception as err:
            self.log_error("predict failed: %s: %s", type(err).__name__, err)
            self._error(500, f"prediction failed: {type(err).__name__}")
            return
        self._json(200, {"predictions": predictions})

    def do_PUT(self) -> None:
        self._error(405, "use POST /predict or GET /healthz, /metadata", allow="GET, POST")

    do_DELETE = do_PATCH = do_PUT

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise BadRequest(411, "send a Content-Length (chunked bodies are not accepted)")
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise BadRequest(411, "a valid Content-Length header is required")
        if length > MAX_BODY:
            self.close_connection = True  # the body is not read: drop the connection
            raise BadRequest(413, f"body of {length} bytes is over the {MAX_BODY}-byte limit")
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise BadRequest(400, "the body is shorter than its Content-Length")
        return body

    def _json(self, status: int, payload: Any, allow: str | None = None) -> None:
        data = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if allow:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, allow: str | None = None) -> None:
        self._json(status, {"error": message, "status": status}, allow=allow)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.quiet:  # type: ignore[attr-defined]
            return
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    quiet = False
    batcher: Batcher | None = None  # set once the socket is bound

    def server_close(self) -> None:
        super().server_close()
        if self.batcher is not None:
            self.batcher.close()


def make_server(served: Served, host: str, port: int, quiet: bool = False) -> Server:
    handler = type("BoundHandler", (Handler,), {"served": served})
    server = Server((host, port), handler)
    server.quiet = quiet
    server.batcher = Batcher(served.model)
    return server


def serve_model(model_path: Path, host: str = "127.0.0.1", port: int = 8080,
                quiet: bool = False) -> Outcome:
    """Load the model and serve it until interrupted (Ctrl-C or SIGTERM)."""
    served = load_model(Path(model_path))
    try:
        server = make_server(served, host, port, quiet=quiet)
    except OSError as err:
        raise MlspecError([Diagnostic("mlspec", 0, 0, f"cannot listen on {host}:{port}: "
                                      f"{err.strerror or err}", "serve.listen",
                                      "pick a free port with --port")]) from None
    sys.stderr.write(f"serving {model_path} on http://{host}:{server.server_port} "
                     "(POST /predict, GET /healthz, GET /metadata)\n")
    sys.stderr.flush()
    if threading.current_thread() is threading.main_thread():
        # As PID 1 in a container, SIGTERM has no default action: stop cleanly on it.
        signal.signal(signal.SIGTERM, lambda *_: _stop(server))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return Outcome(stderr="stopped\n")


def _stop(server: Server) -> None:
    threading.Thread(target=server.shutdown, daemon=True).start()
