"""A blob download, streamed into a file and hashed on the way, in bounded memory.

`readinto_hash` reads the socket straight into BUFFERS reused buffers (the plain body under
urllib3: `plain_body`) while a second thread hashes and writes the filled ones; `hash_to` does
the same for `iter_content` chunks (a content-encoded body). A write failure is `WriteFailed`
(the disk), anything else raised while reading is the connection's (mlspec.remote.oci turns
both into RemoteErrors).
"""

from __future__ import annotations

import hashlib
import http.client
import queue
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Protocol

from mlspec.remote.meter import Meter

if TYPE_CHECKING:
    import requests

READ_BYTES = 1 << 20
BUFFERS = 4  # a download's buffers in flight between receiving and hashing


class WriteFailed(Exception):
    """Writing the download failed (its OSError is the cause), as opposed to receiving it."""


def write(out: IO[bytes], data: bytes | memoryview) -> None:
    try:
        out.write(data)
    except OSError as exc:
        raise WriteFailed() from exc


class ReadInto(Protocol):
    def readinto(self, b: memoryview, /) -> int: ...


def plain_body(resp: requests.Response) -> ReadInto | None:
    """The http.client response under urllib3, when the body is not content-encoded: read
    with readinto into one reused buffer it ran at curl's speed on a 1 GiB blob, where
    iter_content (a new bytes object per block, urllib3's buffering) ran at 35-60% of it
    (bench/remote_transfer.py). None: use iter_content."""
    fp = getattr(resp.raw, "_fp", None)
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity") or not callable(getattr(fp, "readinto", None)):
        return None
    return fp


def content_length(resp: requests.Response) -> int | None:
    try:
        return int(resp.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def readinto_hash(src: ReadInto, out: IO[bytes], max_size: int | None,
                   length: int | None, meter: Meter) -> str:
    """Copy `src` to `out` through BUFFERS reused READ_BYTES buffers, hashing on the way: this
    thread receives into a free buffer while a second one hashes and writes the previous ones
    (socket reads, hashlib and write release the GIL, so receiving and hashing overlap on two
    cores; memory stays BUFFERS × READ_BYTES). Stops past `max_size` (what is written then
    hashes to something else: the caller refuses it). A body that ends before its
    Content-Length is a broken download (http.client's readinto just returns 0 there)."""
    h = hashlib.sha256()
    free: queue.Queue[memoryview] = queue.Queue()
    for _ in range(BUFFERS):
        free.put(memoryview(bytearray(READ_BYTES)))
    full: queue.Queue[tuple[memoryview, int] | None] = queue.Queue()
    failed: list[BaseException] = []

    def drain() -> None:
        while (item := full.get()) is not None:
            view, got = item
            if not failed:
                try:
                    h.update(view[:got])
                    write(out, view[:got])
                except BaseException as exc:  # reported in the caller's thread
                    failed.append(exc)
            free.put(view)

    worker = threading.Thread(target=drain, daemon=True)
    worker.start()
    n, ended = 0, False
    try:
        while not failed:
            view = free.get()
            got = src.readinto(view)
            if not got:
                ended = True
                break
            n += got
            if max_size is not None and n > max_size:
                break
            full.put((view, got))
            meter.add(got)
    finally:
        full.put(None)
        worker.join()
    if failed:
        raise failed[0]
    if ended and length is not None and n < length:
        raise http.client.IncompleteRead(b"", length - n)
    return "sha256:" + h.hexdigest()


def hash_to(chunks: Iterator[bytes], out: IO[bytes], max_size: int | None,
             meter: Meter) -> str:
    """Write `chunks` to `out` and return their sha256 digest, stopping past `max_size`. The
    hashing and writing run in a second thread (hashlib and write release the GIL), so they
    overlap with receiving; at most 8 chunks wait in between (bounded memory)."""
    h = hashlib.sha256()
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
    failed: list[BaseException] = []

    def drain() -> None:
        while (chunk := pending.get()) is not None:
            if not failed:
                try:
                    h.update(chunk)
                    write(out, chunk)
                except BaseException as exc:  # reported in the caller's thread
                    failed.append(exc)

    worker = threading.Thread(target=drain, daemon=True)
    worker.start()
    n = 0
    try:
        for chunk in chunks:
            n += len(chunk)
            if (max_size is not None and n > max_size) or failed:
                break
            pending.put(chunk)
            meter.add(len(chunk))
    finally:
        pending.put(None)
        worker.join()
    if failed:
        raise failed[0]
    return "sha256:" + h.hexdigest()
