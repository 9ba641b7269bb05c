"""Mermaid `xychart-beta` blocks for markdown, and the one escaping of what goes into them.

Labels (short shas, tag names, param values) and values (metrics) come from git history and
pull requests, so nothing reaches a chart unchecked:
- a label keeps letters, digits and `. _ + - / = , :` and spaces; anything else (quotes,
  brackets, backticks, `%`, `#`, `;`, `{`, line breaks, control and format characters) becomes
  `_`, and it is cut to LABEL_MAX characters. Mermaid strings have no escape for `"`, its
  directives start with `%%{` and its entities with `#`: none of them survives.
- a value is plotted only when finite and below PLOT_MAX in size, written as plain decimals
  (mermaid's number token has no exponent). Others are left out of the chart, never guessed.
Every line of a block starts with a keyword, so a fence can never be closed from inside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LABEL_MAX = 24  # an axis label
TITLE_MAX = 60
PLOT_MAX = 1e15
_SAFE_PUNCT = set("._+-/=,: ")


def label(text: str, size: int = LABEL_MAX) -> str:
    """A quoted mermaid string that cannot end early or carry a directive."""
    out = "".join(c if (c.isalnum() and c.isprintable()) or c in _SAFE_PUNCT else "_"
                  for c in text).strip() or "_"
    if len(out) > size:
        out = out[:size - 1] + "~"
    return f'"{out}"'


def plottable(v: float | None) -> bool:
    return (v is not None and not isinstance(v, bool) and math.isfinite(v)
            and abs(v) < PLOT_MAX)


def number(v: float) -> str:
    """A finite value as mermaid reads it: decimals, no exponent."""
    if not plottable(v):
        raise ValueError(f"not plottable: {v!r}")
    text = f"{v:.12f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _axis(values: Sequence[float]) -> tuple[float, float]:
    """A y range with a margin, so the smallest bar still shows and equal values do not
    collapse the axis."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or (abs(hi) * 0.05 or 1.0)
    low = lo - pad
    if lo >= 0 > low:
        low = 0.0  # a metric that cannot go negative keeps a zero floor
    return low, hi + pad


def _labels(names: list[str]) -> list[str]:
    """Escaped labels, numbered when two would read alike (mermaid merges equal ones)."""
    out = [label(n) for n in names]
    if len(set(out)) != len(out):
        out = [label(f"{i + 1}. {n}") for i, n in enumerate(names)]
    return out


def chart(title: str, y_title: str, points: Sequence[tuple[str, float]],
          reference: float | None = None, x_title: str = "") -> str:
    """A fenced xychart: one bar per (label, value); with `reference`, a line at that value
    across the chart (this change's value, to compare every bar with). Points whose value is
    not plottable are dropped; '' when none is left."""
    kept = [(name, v) for name, v in points if plottable(v)]
    if not kept:
        return ""
    values = [v for _, v in kept]
    ref = reference if reference is not None and plottable(reference) else None
    low, high = _axis(values + ([ref] if ref is not None else []))
    lines = ["```mermaid", "xychart-beta",
             f"  title {label(title, TITLE_MAX)}",
             "  x-axis " + (f"{label(x_title, TITLE_MAX)} " if x_title else "")
             + "[" + ", ".join(_labels([name for name, _ in kept])) + "]",
             f"  y-axis {label(y_title, TITLE_MAX)} {number(low)} --> {number(high)}",
             "  bar [" + ", ".join(number(v) for v in values) + "]"]
    if ref is not None:
        lines.append("  line [" + ", ".join(number(ref) for _ in kept) + "]")
    lines.append("```")
    return "\n".join(lines) + "\n"
