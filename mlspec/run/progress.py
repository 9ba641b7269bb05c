"""What `mlspec run` shows while it works: a rich status line on a terminal, plain lines otherwise.

Everything goes to stderr so stdout carries only the summary (or `--json` data).
"""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    def __init__(self, total: int):
        self.total = total
        self.index = 0
        self.t0 = 0.0
        self._console: Any = None
        self._status: Any = None
        if total > 1 and sys.stderr.isatty():
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)

    def say(self, text: str) -> None:
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def batch(self, total: int) -> None:
        """A new pass over `total` steps (a sweep runs one pass per variant): `[k/total]`."""
        self.total, self.index = total, 0

    def start(self, name: str, what: str) -> None:
        self.index += 1
        self.t0 = time.monotonic()
        label = f"[{self.index}/{self.total}] {name}: {what}"
        if self._console is not None:
            if self._status is None:
                self._status = self._console.status(label)
                self._status.start()
            else:
                self._status.update(label)
        self.say(f"▶ {name}: {what}")

    def skip(self, name: str, quiet: bool = False) -> None:
        """A step that is up to date; `quiet` when it was already reported in this run."""
        self.index += 1
        if not quiet:
            self.say(f"· {name}: up to date, skipped")

    def skip_restored(self, name: str) -> None:
        """A stale step whose outs came back from the local cache instead of running."""
        self.index += 1
        self.say(f"↺ {name}: restored from the cache (same key; not executed)")

    def done(self, name: str, ok: bool, detail: str = "") -> None:
        secs = time.monotonic() - self.t0
        mark = "✓" if ok else "✗"
        self.say(f"{mark} {name} ({secs:.1f}s){': ' + detail if detail else ''}")

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
