"""Five-field cron validation (the dialect GitHub Actions and GitLab schedules accept)."""

from __future__ import annotations

import re

_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_DAYS = "sun mon tue wed thu fri sat".split()
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
)
_ITEM = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")


def _value(tok: str, lo: int, hi: int, names: dict[str, int], what: str) -> tuple[int | None, str]:
    if tok.isdigit():
        n = int(tok)
    elif tok.lower() in names:
        n = names[tok.lower()]
    else:
        return None, f"'{tok}' is not a valid {what}"
    if not lo <= n <= hi:
        return None, f"{what} {n} is outside {lo}-{hi}"
    return n, ""


def cron_problem(expr: str) -> str | None:
    """Return what is wrong with a cron expression, or None when it is valid."""
    parts = expr.split()
    if len(parts) != 5:
        return f"expected 5 fields, found {len(parts)}"
    for part, (what, lo, hi, names) in zip(parts, _FIELDS, strict=True):
        for item in part.split(","):
            m = _ITEM.fullmatch(item.lower())
            if not m:
                return f"'{item}' is not a valid {what} field"
            base, step = m.group(1), m.group(2)
            if step is not None and int(step) == 0:
                return f"step '/0' in the {what} field"
            if base == "*":
                continue
            bounds = base.split("-")
            vals = []
            for b in bounds:
                n, err = _value(b, lo, hi, names, what)
                if n is None:
                    return err
                vals.append(n)
            if len(vals) == 2 and vals[0] > vals[1]:
                return f"range {base} in the {what} field runs backwards"
    return None
