"""Reading a step's metrics file: bounded, non-blocking, finite numbers only.

A metrics file is written by the step's own code, which on a pull request is the author's code:
it is read with limits. At most MAX_BYTES (10 MB) are read (the size is checked on the open
file before reading), objects nest at most MAX_DEPTH (32) levels, it must be a regular file (a
FIFO cannot block the run), and every metric must be a finite number: `Infinity`, `-Infinity`,
`NaN` and overflowing literals such as `1e999` are refused, because they compare as passing
(or never failing) against any gate.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from mlspec.run.hashing import file_kind

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 32


class MetricsError(Exception):
    """Why a metrics file cannot be used (the message names the file)."""


def read_metrics(root: Path, rel: str) -> dict[str, float]:
    """Numbers from the JSON object in `rel`; nested objects become dotted names.

    Raises FileNotFoundError when it does not exist, MetricsError when it is unusable."""
    full = os.path.join(root, rel)
    st = os.stat(full)
    kind = file_kind(st.st_mode)
    if kind is not None or not os.path.isfile(full):
        raise MetricsError(f"its metrics file '{rel}' is a {kind or 'directory'}, not a file")
    fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fd).st_size
        if size > MAX_BYTES:
            raise MetricsError(f"its metrics file '{rel}' is {size / 1e6:.1f} MB; a metrics file "
                               f"may hold at most {MAX_BYTES // (1024 * 1024)} MB")
        raw = fh.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise MetricsError(f"its metrics file '{rel}' grew past "
                           f"{MAX_BYTES // (1024 * 1024)} MB while being read")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise MetricsError(f"its metrics file '{rel}' is nested too deeply (at most "
                           f"{MAX_DEPTH} levels)") from None
    except ValueError as exc:
        raise MetricsError(f"its metrics file '{rel}' is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MetricsError(f"its metrics file '{rel}' is not a JSON object")
    metrics = flatten_metrics(data, rel)
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    if bad:
        shown = ", ".join(f"'{k}' ({metrics[k]!r})" for k in bad[:5])
        raise MetricsError(f"its metrics file '{rel}' has metrics that are not finite "
                           f"numbers: {shown}; a metric must be a finite number (Infinity, "
                           "NaN and overflowing literals such as 1e999 would pass or dodge "
                           "gates)")
    return metrics


def flatten_metrics(data: dict[str, Any], rel: str = "", prefix: str = "",
                    depth: int = 1) -> dict[str, float]:
    """Numbers from a metrics JSON object; nested objects become dotted names."""
    if depth > MAX_DEPTH:
        raise MetricsError(f"its metrics file '{rel}' is nested too deeply (at most "
                           f"{MAX_DEPTH} levels)")
    out: dict[str, float] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            try:
                out[key] = float(v) if abs(v) > 2**53 else v
            except OverflowError:
                out[key] = math.inf if v > 0 else -math.inf
        elif isinstance(v, float):
            out[key] = v
        elif isinstance(v, dict):
            out.update(flatten_metrics(v, rel, key + ".", depth + 1))
    return out
