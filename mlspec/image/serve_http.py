"""The HTTP side of `mlspec serve`: strict HTTP/1.1 framing and bounded JSON (standard library).

Framing rules, so that no byte of one request is ever read as the start of another:
- every request body is read (up to MAX_BODY, then discarded when the route takes none) or
  refused, on every route and method;
- Content-Length is one value of plain ASCII digits (`2_6`, `+26`, a folded line or two
  headers are refused); any Transfer-Encoding is refused with 501;
- every error answer closes the connection (`Connection: close`), and the socket is closed
  gracefully (write side first, then pending input drained briefly) so the client reads the
  answer instead of a reset.

A /predict body is JSON of bounded depth (MAX_DEPTH) and number size (MAX_NUMBER_CHARS);
whatever the input, the client gets a JSON answer `{"error": ..., "status": ...}`.
"""

from __future__ import annotations

import json
import math
import re
import socket
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import accumulate
from typing import TYPE_CHECKING, cast

from mlspec.image.serve_model import Batcher, Served

if TYPE_CHECKING:
    from mlspec.image.serve_metrics import Metrics
    from mlspec.image.serve_sample import SampleLog

MAX_BODY = 10 * 1024 * 1024
MAX_INSTANCES = 100_000
MAX_DEPTH = 32  # {"instances": [[...]]} needs 3
MAX_NUMBER_CHARS = 100  # a float64 needs 25; also keeps every int convertible to float
BACKLOG = 1024  # socketserver's default of 5 drops bursts of connections
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024

ROUTES = {"/predict": ("POST",), "/healthz": ("GET", "HEAD"), "/metadata": ("GET", "HEAD")}
METRICS_ROUTE = "/metrics"  # a route only while the exporter is on
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_DIGITS = re.compile(r"[0-9]{1,15}")


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (strings skipped), in C-speed passes."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _number(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise BadRequest(400, f"a number in the body has {len(text)} characters; at most "
                             f"{MAX_NUMBER_CHARS} are accepted")
        return kind(text)
    return parse


def _no_constant(name: str) -> object:
    raise BadRequest(400, f"malformed JSON: {name} is not valid JSON")


def decode_json(body: bytes) -> object:
    """Parse a JSON body within the depth and number bounds; BadRequest otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(400, f"malformed JSON: the body is not UTF-8 ({err.reason} at byte "
                         f"{err.start})") from None
    depth = json_depth(text)
    if depth > MAX_DEPTH:
        raise BadRequest(400, f"the JSON nests {depth} levels deep; at most {MAX_DEPTH} are "
                         "accepted")
    try:
        return cast(object, json.loads(text, parse_constant=_no_constant,
                                       parse_int=_number(int), parse_float=_number(float)))
    except ValueError as err:
        raise BadRequest(400, f"malformed JSON: {err}") from None
    except RecursionError:
        raise BadRequest(400, "the JSON nests too deeply") from None


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _key_list(doc: dict[str, object]) -> str:
    keys = [json.dumps(k[:40]) for k in list(doc)[:5]]
    more = f" and {len(doc) - 5} more" if len(doc) > 5 else ""
    return ", ".join(keys) + more if keys else "none"


def parse_instances(body: bytes, n_features: int | None) -> list[list[float]]:
    """Validate a /predict body; raise BadRequest with the status and a readable reason."""
    doc = decode_json(body)
    shape = '{"instances": [[...], ...]}'
    if not isinstance(doc, dict):
        raise BadRequest(400, f"the body must be a JSON object {shape}, not a JSON "
                         f"{_json_type(doc)}")
    if "instances" not in doc:
        raise BadRequest(400, f"the body has no key \"instances\" (its keys: {_key_list(doc)}); "
                         f"send {shape}")
    rows = doc["instances"]
    if not isinstance(rows, list) or not rows:
        raise BadRequest(400, "\"instances\" must be a non-empty array of rows, not "
                         + ("an empty array" if isinstance(rows, list) else
                            f"a JSON {_json_type(rows)}"))
    if len(rows) > MAX_INSTANCES:
        raise BadRequest(413, f"at most {MAX_INSTANCES} instances per request")
    width = n_features
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise BadRequest(400, f"instance {i} is not a list of numbers (a JSON "
                             f"{_json_type(row)})")
        if width is None:
            width = len(row)
        if len(row) != width:
            expected = "the model expects" if n_features is not None else "instance 0 has"
            raise BadRequest(422, f"instance {i} has {len(row)} features; {expected} {width}")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise BadRequest(422, f"instance {i} has a non-numeric value: "
                                 f"{json.dumps(v)[:60]}")
    return rows


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlspec-serve"
    timeout = 30  # a stalled client cannot hold a thread for ever
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    @property
    def app(self) -> Server:
        return cast(Server, self.server)

    _start: float | None = None  # when handle_request began: answers it sends are timed

    def handle_request(self) -> None:
        """Every method of every route: frame the body first, then route."""
        self._start = time.perf_counter()
        try:
            self._route()
        finally:
            self._start = None

    def _route(self) -> None:
        try:
            body = self._body()
        except BadRequest as bad:
            self._error(bad.status, bad.message)
            return
        path = self.path.split("?", 1)[0]
        methods = self.app.routes.get(path)
        if methods is None:
            self._error(404, f"no route {path[:200]}; try POST /predict, GET /healthz, "
                        "GET /metadata" + (", GET /metrics" if self.app.metrics else ""))
        elif self.command not in methods:
            self._error(405, f"use {methods[0]} {path}", allow=", ".join(methods))
        elif path == "/healthz":
            self._send(200, b'{"status":"ok"}\n')
        elif path == "/metadata":
            self._send(200, self.app.metadata_json)
        elif path == METRICS_ROUTE and self.app.metrics is not None:
            self._send(200, self.app.metrics.render(), content_type=self.app.metrics.content_type)
        else:
            self._predict(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_request

    def _predict(self, body: bytes) -> None:
        try:
            rows = parse_instances(body, self.app.served.n_features)
        except BadRequest as bad:
            self._error(bad.status, bad.message)
            return
        try:
            predictions = self.app.batcher.predict(rows)
        except ValueError as err:  # scikit-learn's input validation
            self._error(422, f"the model rejected the input: {err}")
            return
        except Exception as err:
            self.log_error("predict failed: %s: %s", type(err).__name__, err)
            self._error(500, f"prediction failed: {type(err).__name__}")
            return
        if self.app.metrics is not None:
            self.app.metrics.predicted(predictions)
        if self.app.sample is not None:
            self.app.sample.offer(rows, predictions)
        self._json(200, {"predictions": predictions})

    def _body(self) -> bytes:
        """The request body, read whole; BadRequest when its framing is not plain HTTP/1.1."""
        if self.headers.get_all("Transfer-Encoding"):
            raise BadRequest(501, "Transfer-Encoding is not supported; send the body with a "
                             "Content-Length header")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            if self.command == "POST" and self.path.split("?", 1)[0] == "/predict":
                raise BadRequest(411, "a Content-Length header is required")
            return b""
        if len(lengths) > 1:
            raise BadRequest(400, "more than one Content-Length header")
        value = lengths[0].strip(" \t")
        if not _DIGITS.fullmatch(value):
            raise BadRequest(400, f"Content-Length must be decimal digits, not {value[:40]!r}")
        length = int(value)
        if length > MAX_BODY:
            raise BadRequest(413, f"body of {length} bytes is over the {MAX_BODY}-byte limit")
        body = self.rfile.read(length)
        if len(body) != length:
            raise BadRequest(400, "the body is shorter than its Content-Length")
        return body

    def _json(self, status: int, payload: object, allow: str | None = None) -> None:
        self._send(status, (json.dumps(payload, separators=(",", ":")) + "\n").encode(), allow)

    def _send(self, status: int, data: bytes, allow: str | None = None,
              content_type: str = "application/json") -> None:
        metrics = self.app.metrics
        if metrics is not None:  # counted before the client can read the answer
            # no command: the request line did not parse (path may be the previous request's)
            path = str(getattr(self, "path", "")) if self.command else ""
            route, method = metrics.labels(path.split("?", 1)[0], str(self.command or ""))
            metrics.request(route, method, status, None if self._start is None
                            else time.perf_counter() - self._start)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if allow:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str, allow: str | None = None) -> None:
        self.close_connection = True  # the rest of the stream is not trusted to be framed
        self._json(status, {"error": message, "status": status}, allow=allow)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Errors the standard library finds (bad request line, too many headers, an
        unknown method) answered like ours: JSON, then the connection is closed."""
        text = message or self.responses.get(code, ("error",))[0]
        if self.request_version == "HTTP/0.9":  # the request line was not parsed: answer 1.1
            self.request_version = self.protocol_version
        self._error(code, text)  # counted, not timed: it never reached handle_request

    def log_message(self, format: str, *args: object) -> None:
        if self.app.quiet:
            return
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(self, address: tuple[str, int], served: Served, quiet: bool = False,
                 metrics: Metrics | None = None, sample: SampleLog | None = None):
        self.served = served
        self.quiet = quiet
        self.metrics = metrics
        self.sample = sample
        self.routes = {**ROUTES, METRICS_ROUTE: ("GET", "HEAD")} if metrics else dict(ROUTES)
        self.metadata_json = (json.dumps(served.metadata, separators=(",", ":")) + "\n").encode()
        self.batcher = Batcher(served.model)  # before binding: a failed bind closes it
        super().__init__(address, Handler)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        """Close gracefully: stop writing, then drain what the client still sends (bounded),
        so closing with unread input does not reset the connection before the client has
        read our answer."""
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER_SECONDS)
            left = LINGER_BYTES
            while left > 0 and (chunk := request.recv(min(left, 65536))):
                left -= len(chunk)
        except OSError:
            pass
        self.close_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away mid-answer is normal; anything else is one line, never a
        traceback."""
        err = sys.exc_info()[1]
        if isinstance(err, OSError) or self.quiet:
            return
        sys.stderr.write(f"{client_address}: {type(err).__name__}: {err}\n")

    def server_close(self) -> None:
        super().server_close()
        self.batcher.close()
        if self.sample is not None:
            self.sample.close()
