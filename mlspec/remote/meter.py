"""The progress line of a blob transfer: on a terminal only, and only once the transfer has
lasted a second (`↓ pull: 312/1024 MiB, 190 MiB/s`), redrawn at most four times a second on
stderr and erased when the transfer ends. It shows counts only: no text from the remote."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

MIB = 1 << 20
DELAY = 1.0  # seconds before the line appears
EVERY = 0.25  # seconds between redraws


class Meter:
    def __init__(self, label: str, total: int | None, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if stream is None and sys.stderr.isatty():
            stream = sys.stderr
        self.stream, self.label, self.total, self.clock = stream, label, total, clock
        self.t0 = clock()
        self.due = self.t0 + DELAY
        self.n = 0
        self.shown = False

    def add(self, n: int) -> None:
        self.n += n
        if self.stream is None:
            return
        now = self.clock()
        if now < self.due:
            return
        self.due = now + EVERY
        rate = self.n / MIB / max(now - self.t0, 1e-9)
        of = f"/{self.total / MIB:.0f}" if self.total else ""
        self.stream.write(f"\r{self.label}: {self.n / MIB:.0f}{of} MiB, {rate:.0f} MiB/s\x1b[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown and self.stream is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False
