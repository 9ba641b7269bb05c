"""Data checks on a step's CSV outs: `min_rows`, `columns` with types, `max_null_fraction`.

A failing check fails its step (exit 1) before anything downstream reads the data, and is
shown as a table of check, expected, actual and verdict.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec.tables import table

if TYPE_CHECKING:
    from mlspec.spec.step import Checks

NULLS = {"", "na", "nan", "null", "none", "n/a"}
_BOOLS = {"true", "false", "0", "1", "yes", "no"}


@dataclass
class CheckResult:
    file: str
    check: str
    expected: str
    actual: str
    ok: bool


def _is_type(value: str, kind: str) -> bool:
    if kind == "str":
        return True
    if kind == "bool":
        return value.strip().lower() in _BOOLS
    try:
        if kind == "int":
            int(value)
        else:
            float(value)
    except ValueError:
        return False
    return True


def check_csv(path: Path, rel: str, checks: Checks) -> list[CheckResult]:
    results: list[CheckResult] = []
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, None) or []
        index = {name.strip(): i for i, name in enumerate(header)}
        wanted = {c: index[c] for c in checks.columns if c in index}
        bad_type: dict[str, tuple[int, str]] = {}  # column -> (count, first bad value)
        nulls = [0] * len(header)
        rows = 0
        for row in reader:
            if not row:
                continue
            rows += 1
            for i in range(len(header)):
                value = row[i] if i < len(row) else ""
                if value.strip().lower() in NULLS:
                    nulls[i] += 1
            for col, i in wanted.items():
                value = row[i] if i < len(row) else ""
                if value.strip().lower() in NULLS:
                    continue
                if not _is_type(value, checks.columns[col]):
                    count, first = bad_type.get(col, (0, value))
                    bad_type[col] = (count + 1, first)
    if checks.min_rows is not None:
        results.append(CheckResult(rel, "min_rows", f">= {checks.min_rows}", str(rows),
                                   rows >= checks.min_rows))
    for col, kind in checks.columns.items():
        if col not in index:
            results.append(CheckResult(rel, f"column {col}", kind, "missing", False))
        elif col in bad_type:
            count, first = bad_type[col]
            results.append(CheckResult(rel, f"column {col}", kind,
                                       f"{count} non-{kind} value(s), e.g. {first!r}", False))
        else:
            results.append(CheckResult(rel, f"column {col}", kind, kind, True))
    if checks.max_null_fraction is not None:
        worst, worst_col = 0.0, "-"
        for i, n in enumerate(nulls):
            frac = n / rows if rows else 0.0
            if frac > worst:
                worst, worst_col = frac, header[i]
        actual = f"{worst:.4g} ({worst_col})" if worst_col != "-" else "0"
        results.append(CheckResult(rel, "max_null_fraction", f"<= {checks.max_null_fraction:g}",
                                   actual, worst <= checks.max_null_fraction))
    return results


def run_checks(root: Path, outs: list[str], checks: Checks) -> list[CheckResult]:
    """Evaluate the checks on every CSV among the outs (files, or CSVs inside out dirs)."""
    results: list[CheckResult] = []
    for out in outs:
        path = root / out.rstrip("/")
        files = sorted(path.rglob("*.csv")) if path.is_dir() else (
            [path] if path.suffix.lower() == ".csv" else [])
        for f in files:
            if not f.is_file():  # a FIFO, socket or device named *.csv: never opened
                continue
            results.extend(check_csv(f, f.relative_to(root).as_posix(), checks))
    return results


def render(results: list[CheckResult]) -> str:
    return table(["file", "check", "expected", "actual", "verdict"],
                 [[r.file, r.check, r.expected, r.actual, "pass" if r.ok else "FAIL"]
                  for r in results])
