"""The blob download of mlspec.remote.oci, both ways it reads a body (straight from the socket
into one buffer; iter_content when the body is content-encoded), against a small HTTP server
in this process: a whole body hashes to its digest, a body cut short is `remote.unreachable`,
a body past max_size hashes to something else. No external tool needed."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlspec.remote import download, oci
from mlspec.remote.errors import RemoteError
from mlspec.remote.url import parse

DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and 4 bytes: more than one read buffer
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


class Blobs(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cut = False  # send half the body under the full Content-Length, then close

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = DATA[: len(DATA) // 2] if self.cut else DATA
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if self.cut:
            self.close_connection = True


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blobs)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    Blobs.cut = False


def _registry(srv: http.server.ThreadingHTTPServer) -> oci.Registry:
    return oci.Registry(parse(f"oci://127.0.0.1:{srv.server_address[1]}/t/store"))


@pytest.mark.parametrize("raw", [True, False], ids=["readinto", "iter_content"])
def test_whole_cut_and_capped_downloads(server: http.server.ThreadingHTTPServer,
                                        tmp_path: Path, raw: bool,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[bool] = []
    plain = download.plain_body

    def spy(resp: object) -> object:
        got = plain(resp) if raw else None  # type: ignore[arg-type]
        used.append(got is not None)
        return got

    monkeypatch.setattr(download, "plain_body", spy)
    reg = _registry(server)
    assert reg.get_blob(DIGEST, tmp_path / "whole") == DIGEST
    assert (tmp_path / "whole").read_bytes() == DATA
    assert used == [raw]  # the path under test was the one taken
    assert reg.get_blob(DIGEST, tmp_path / "capped", max_size=1000) != DIGEST
    Blobs.cut = True
    with pytest.raises(RemoteError) as err:
        _registry(server).get_blob(DIGEST, tmp_path / "cut")
    assert err.value.rule == "remote.unreachable", err.value.message
    assert "broke off" in err.value.message
