"""The transfer progress line (mlspec.remote.meter): silent for a transfer under a second and
off a terminal, then counts and rate redrawn in place, erased at the end; and the download of
mlspec.remote.oci drives it."""

from __future__ import annotations

import http.server
import io
import threading
from pathlib import Path

import pytest
from test_oci_download import DATA, DIGEST, Blobs

from mlspec.remote import oci
from mlspec.remote.meter import MIB, Meter
from mlspec.remote.url import parse


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_silent_for_a_second_then_counts_and_rate_then_erased() -> None:
    out, clock = io.StringIO(), Clock()
    m = Meter("↓ pull", 8 * MIB, stream=out, clock=clock)
    clock.now += 0.9
    m.add(2 * MIB)
    assert out.getvalue() == ""  # under a second: nothing
    clock.now += 0.1
    m.add(2 * MIB)
    assert out.getvalue() == "\r↓ pull: 4/8 MiB, 4 MiB/s\x1b[K"
    clock.now += 0.1
    m.add(MIB)
    assert out.getvalue().count("\r↓ pull") == 1  # redrawn at most every 0.25 s
    clock.now += 0.2
    m.add(MIB)
    assert out.getvalue().endswith("\r↓ pull: 6/8 MiB, 5 MiB/s\x1b[K")
    m.close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_quick_transfers_and_pipes_print_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    out, clock = io.StringIO(), Clock()
    m = Meter("↑ push", None, stream=out, clock=clock)
    m.add(MIB)
    m.close()
    assert out.getvalue() == ""
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    m = Meter("↑ push", MIB, clock=clock)
    clock.now += 5
    m.add(MIB)
    assert m.stream is None


def test_a_slow_download_shows_the_line(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out, clock = io.StringIO(), Clock()

    def ticking() -> float:
        clock.now += 0.6  # every look at the clock is 0.6 s later
        return clock.now

    monkeypatch.setattr(oci, "Meter", lambda label, total: Meter(label, total, out, ticking))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blobs)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        reg = oci.Registry(parse(f"oci://127.0.0.1:{srv.server_address[1]}/t/store"))
        assert reg.get_blob(DIGEST, tmp_path / "blob") == DIGEST
    finally:
        srv.shutdown()
    total = len(DATA) / MIB
    assert f"/{total:.0f} MiB" in out.getvalue() and "↓ pull: " in out.getvalue()
    assert out.getvalue().endswith("\r\x1b[K")
