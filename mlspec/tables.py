"""Plain-text tables for run summaries, data checks, gates and --verify diffs, and the one
number format of every table and report."""

from __future__ import annotations

import math


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    return "\n".join(out) + "\n"


def num(v: float | None, none: str = "—") -> str:
    """The one format for a metric, threshold or delta, in every table and report: integers
    as they are, four decimals (columns line up, 0.9 and 0.9000 read alike), four significant
    digits when that would show nothing (below 0.001, at or above 100,000); `none` for a
    value that is absent."""
    if v is None:
        return none
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.4g}"
    return f"{v:.4f}"
