"""`mlspec serve` against hostile HTTP on real sockets: request framing (smuggling through
unread bodies, odd Content-Length and Transfer-Encoding), bounded JSON, and a burst of
connections larger than socketserver's default listen backlog."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_serve_server import KNOWN, train_iris

from mlspec.image.serve import Server, load_model, make_server

GOOD = b'{"instances":[[1,2,3,4]]} '  # 26 bytes, a valid /predict body
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    srv = make_server(load_model(train_iris(tmp_path_factory.mktemp("http"))), "127.0.0.1", 0,
                      quiet=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield "127.0.0.1", srv.server_port
    srv.shutdown()
    srv.server_close()


def exchange(addr: tuple[str, int], raw: bytes, idle: float = 1.5) -> tuple[list[
        tuple[int, dict[str, str], bytes]], bool]:
    """Send raw bytes on one connection; return every response read (status, headers, body)
    and whether the server closed the connection (else it sat idle for `idle` seconds)."""
    with socket.create_connection(addr, timeout=10) as sock:
        sock.sendall(raw)
        data, closed = b"", False
        while True:
            ready, _, _ = select.select([sock], [], [], idle)
            if not ready:
                break
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
    responses = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        responses.append((status, headers, rest[:n]))
        data = rest[n:]
    return responses, closed


def post(body: bytes, extra: str = "", length: str | None = None) -> bytes:
    cl = f"Content-Length: {len(body) if length is None else length}\r\n"
    return (f"POST /predict HTTP/1.1\r\nHost: x\r\n{extra}{cl}\r\n").encode() + body


@pytest.mark.parametrize("request_line", [
    "GET /nope", "POST /nope", "POST /healthz", "PUT /predict", "DELETE /predict",
    "PATCH /metadata", "OPTIONS /predict"])
def test_a_body_sent_to_an_error_route_is_never_read_as_the_next_request(
        server: tuple[str, int], request_line: str) -> None:
    raw = (f"{request_line} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(SMUGGLED)}\r\n\r\n"
           .encode() + SMUGGLED)
    responses, closed = exchange(server, raw)
    assert [r[0] for r in responses] in ([404], [405])  # one answer, not two
    assert responses[0][1]["connection"] == "close" and closed
    assert json.loads(responses[0][2])["status"] == responses[0][0]


@pytest.mark.parametrize("path", ["/healthz", "/metadata"])
def test_a_get_with_a_body_reads_the_body_and_keeps_the_connection(
        server: tuple[str, int], path: str) -> None:
    raw = (f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(SMUGGLED)}\r\n\r\n"
           .encode() + SMUGGLED + post(GOOD))
    responses, closed = exchange(server, raw)
    assert [r[0] for r in responses] == [200, 200]  # the body was skipped, not answered
    assert "predictions" in json.loads(responses[1][2])
    assert not closed


@pytest.mark.parametrize("length", ["2_6", "+26", "26.0", "0x1a", "\u0662\u0666", "-26",
                                    "26, 26", "\r\n 26"])
def test_content_length_must_be_plain_digits(server: tuple[str, int], length: str) -> None:
    raw = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: " + length.encode()
           + b"\r\n\r\n" + GOOD)
    responses, closed = exchange(server, raw)
    assert [r[0] for r in responses] == [400]
    assert "Content-Length" in json.loads(responses[0][2])["error"] and closed


@pytest.mark.parametrize("lengths", [("26", "26"), ("26", "3"), ("3", "26")])
def test_two_content_length_headers_are_refused(server: tuple[str, int],
                                                lengths: tuple[str, str]) -> None:
    raw = post(GOOD, extra=f"Content-Length: {lengths[0]}\r\n", length=lengths[1])
    responses, closed = exchange(server, raw)
    assert [r[0] for r in responses] == [400] and closed
    assert "more than one Content-Length" in json.loads(responses[0][2])["error"]


@pytest.mark.parametrize("encoding", ["chunked", "gzip, chunked", "identity", "Chunked",
                                      "chunked, identity"])
def test_any_transfer_encoding_is_refused_and_closes(server: tuple[str, int],
                                                     encoding: str) -> None:
    chunked = f"{len(GOOD):x}\r\n".encode() + GOOD + b"\r\n0\r\n\r\n"
    for raw in (post(chunked, extra=f"Transfer-Encoding: {encoding}\r\n"),  # with a length
                b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + encoding.encode()
                + b"\r\n\r\n" + chunked + SMUGGLED):
        responses, closed = exchange(server, raw)
        assert [r[0] for r in responses] == [501] and closed
        assert "Transfer-Encoding" in json.loads(responses[0][2])["error"]


def test_every_error_answer_closes_the_connection(server: tuple[str, int]) -> None:
    for body in (b"{", b'{"instances": [[1, 2, 3]]}', b'{"data": 1}'):
        responses, closed = exchange(server, post(body) + SMUGGLED)
        assert len(responses) == 1 and responses[0][0] in (400, 422)
        assert responses[0][1]["connection"] == "close" and closed
    # an unknown method or a bad request line: a JSON answer too, then close
    for raw in (b"BREW /predict HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /x HTTP/9.9\r\n\r\n",
                b"GARBAGE\r\n\r\n"):
        responses, closed = exchange(server, raw + SMUGGLED)
        assert len(responses) == 1 and 400 <= responses[0][0] < 600, responses
        assert json.loads(responses[0][2])["status"] == responses[0][0] and closed


def test_head_answers_headers_only_and_keeps_the_connection(server: tuple[str, int]) -> None:
    raw = b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post(GOOD)
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(raw)
        time.sleep(0.5)
        data = sock.recv(65536)
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and rest.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(("body", "message"), [
    (b'{"instances": [[' + b"9" * 400 + b', 1, 2, 3]]}', "400 characters"),
    (b'{"instances": [[1e' + b"1" * 300 + b', 1, 2, 3]]}', "characters"),
    (b"[" * 100_000 + b"]" * 100_000, "nests 100000 levels"),
    (b'{"instances": [[1, 2, 3, 4]], "x": ' + b"{\"a\": " * 40 + b"1" + b"}" * 40 + b"}",
     "nests 41 levels"),
    (b"[" * 5000, "nests 5000 levels"),
    (b'{"instances": [[1, 2, 3, 4]], "s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', None),
])
def test_json_depth_and_number_size_are_bounded(server: tuple[str, int], body: bytes,
                                                message: str | None) -> None:
    responses, _ = exchange(server, post(body))
    assert len(responses) == 1
    status, _, data = responses[0]
    if message is None:  # brackets inside a string do not count
        assert status == 200
        return
    assert status == 400 and message in json.loads(data)["error"]


def test_one_hundred_simultaneous_connections_all_get_an_answer(tmp_path: Path) -> None:
    srv: Server = make_server(load_model(train_iris(tmp_path)), "127.0.0.1", 0, quiet=True)
    addr = ("127.0.0.1", srv.server_port)
    serving = threading.Thread(target=srv.serve_forever, daemon=True)
    try:
        # The server is listening but not accepting yet: every connection must still be
        # taken by the kernel (socketserver's backlog of 5 took 6 and dropped the others).
        socks = []
        for _ in range(100):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(addr)
            socks.append(s)
        time.sleep(0.5)
        _, writable, _ = select.select([], socks, [], 0)
        assert len(writable) == 100
        serving.start()
        answered = 0
        body = json.dumps({"instances": [KNOWN[0][0]]}).encode()
        for s in socks:
            s.setblocking(True)
            s.settimeout(10)
            s.sendall(post(body, extra="Connection: close\r\n"))
        for s in socks:
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
            answered += reply.startswith(b"HTTP/1.1 200") and b'"setosa"' in reply
            s.close()
        assert answered == 100
    finally:
        if serving.is_alive():
            srv.shutdown()
        srv.server_close()
