"""`mlspec serve --sample-log PATH`: a bounded random sample of answered rows, for monitoring.

Format (JSON lines, UTF-8, one predicted row per line; stable: readers ignore unknown keys):

    {"ts": 1764572400.123, "inputs": {"sepal_length": 5.1, ...}, "prediction": "setosa"}

`inputs` is an object keyed by the model's `feature_names_in_` when it has them, else the
row as a list of numbers; `prediction` is what /predict answered for that row; `ts` is the
Unix time (seconds, UTC) of the answer.

Bounds: each row of a successful /predict is kept with probability `rate` (independently);
a line longer than `max_row_bytes` is skipped; when the file would pass `max_bytes` it is
renamed to PATH.1 (replacing the previous one) and a new PATH begins, so the log never takes
more than 2 x max_bytes of disk. The request thread only draws random numbers and appends the
kept rows to a bounded in-memory queue (never blocks: when it is full they are dropped); one
writer thread wakes every FLUSH_SECONDS (never per row: a wake-up would compete with the
request threads for the interpreter) and serialises and appends what is queued.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from mlspec.errors import Diagnostic, MlspecError

QUEUE_ROWS = 10_000
FLUSH_SECONDS = 0.5
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_ROW_BYTES = 64 * 1024
RULE = "serve.sample-log"

Counted = Callable[[str, int], None]


def kept_indexes(n: int, rate: float, rng: random.Random) -> list[int]:
    """Which of n rows a Bernoulli(rate) draw keeps, in O(kept) draws (geometric skips)."""
    if rate >= 1.0:
        return list(range(n))
    out: list[int] = []
    log_q = math.log1p(-rate)
    i = -1
    while True:
        i += 1 + int(math.log(1.0 - rng.random()) / log_q)
        if i >= n:
            return out
        out.append(i)


class SampleLog:
    def __init__(self, path: Path, rate: float, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_row_bytes: int = DEFAULT_ROW_BYTES, features: Sequence[str] | None = None,
                 counted: Counted | None = None):
        if not 0.0 < rate <= 1.0 or not math.isfinite(rate):
            raise MlspecError([Diagnostic("", 0, 0, f"--sample-rate must be in (0, 1], not "
                                          f"{rate}", RULE, "e.g. --sample-rate 0.1")])
        if max_bytes < 1024:
            raise MlspecError([Diagnostic("", 0, 0, f"--sample-max-bytes must be at least "
                                          f"1024, not {max_bytes}", RULE,
                                          "e.g. --sample-max-bytes 67108864 (64 MiB)")])
        self.path = Path(path)
        self.rate = rate
        self.max_bytes = max_bytes
        self.max_row_bytes = min(max_row_bytes, max_bytes)
        self.features = list(features) if features is not None else None
        self.counted = counted or (lambda outcome, n: None)
        self._rng = random.Random()
        self._queue: deque[tuple[float, list[float], object]] = deque()
        self._room = threading.Lock()  # guards the check-and-append of offer
        self._stop = threading.Event()
        self._file = self._open()
        self._size = self._file.tell()
        self._warned = False
        self._thread = threading.Thread(target=self._loop, name="mlspec-sample", daemon=True)
        self._thread.start()

    def _open(self) -> io.BufferedWriter:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self.path.open("ab")
        except OSError as err:
            raise MlspecError([Diagnostic(str(self.path), 0, 0, "cannot open the sample log: "
                                          f"{err.strerror or err}", RULE,
                                          "give --sample-log a writable file path")]) from None

    def offer(self, rows: Sequence[list[float]], predictions: Sequence[object]) -> None:
        """From a request thread: keep a random sample of these answered rows. Never blocks."""
        kept = kept_indexes(min(len(rows), len(predictions)), self.rate, self._rng)
        if not kept:
            return
        now = time.time()
        with self._room:  # room is checked and taken at once: the bound holds under threads
            room = QUEUE_ROWS - len(self._queue)
            if room < len(kept):
                self.counted("dropped", len(kept) - max(room, 0))
                kept = kept[:max(room, 0)]
            self._queue.extend((now, rows[i], predictions[i]) for i in kept)

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        self._stop.set()
        self._thread.join(timeout=10)

    def line(self, ts: float, row: list[float], prediction: object) -> bytes | None:
        inputs: object = (dict(zip(self.features, row, strict=False))
                          if self.features is not None and len(self.features) == len(row)
                          else row)
        try:
            text = json.dumps({"ts": round(ts, 3), "inputs": inputs, "prediction": prediction},
                              separators=(",", ":"), allow_nan=False, ensure_ascii=True)
        except (TypeError, ValueError):  # a prediction JSON cannot hold (NaN, an object)
            return None
        return (text + "\n").encode("ascii")

    def _loop(self) -> None:
        while True:
            stop = self._stop.wait(FLUSH_SECONDS)
            while self._queue:
                batch: list[bytes] = []
                while self._queue and len(batch) < 1000:
                    data = self.line(*self._queue.popleft())
                    if data is None or len(data) > self.max_row_bytes:
                        self.counted("skipped", 1)
                    else:
                        batch.append(data)
                self._write(batch)
            if stop:
                self._close_file()
                return

    def _write(self, lines: list[bytes]) -> None:
        f = self._file
        try:
            for data in lines:
                if self._size + len(data) > self.max_bytes and self._size > 0:
                    f.close()
                    # moved away meanwhile (log shipping): nothing to rotate, start a new file
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                    f = self._file = self.path.open("ab")
                    self._size = 0
                f.write(data)
                self._size += len(data)
            f.flush()
            self.counted("written", len(lines))
        except (OSError, ValueError) as err:  # ValueError: the file closed by a failed rotation
            self.counted("dropped", len(lines))
            if not self._warned:
                self._warned = True
                reason = err.strerror if isinstance(err, OSError) else None
                sys.stderr.write(f"warning: the sample log {self.path} stopped being written: "
                                 f"{reason or err}\n")

    def _close_file(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
