"""The CI side of a sweep: each matrix job stashes its variant; one job picks the best.

Called by the generated pipelines (`python -m mlspec.compile.sweep stash|pick …`):

- `stash --dir D --variant V [--param k=v …] PATH…` copies the variant's outs (and
  mlspec.lock) to D/V/ and records its params in D/V/variant.json;
- `pick --dir D --metrics FILE… [--metric M --goal maximize|minimize] [--summary OUT]` reads
  every variant's metrics, copies the best variant's files back into the workspace (so the
  jobs after it see the winning model and its lock) and writes a markdown table of all variants.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

VARIANT_FILE = "variant.json"


def _variant_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def stash(directory: Path, variant: str, params: list[str], paths: list[str]) -> int:
    if not variant or "/" in variant or variant in (".", ".."):
        print(f"sweep: bad variant id {variant!r}", file=sys.stderr)
        return 2
    dest = directory / variant
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    found = 0
    for rel in paths:
        src = Path(rel)
        if src.is_dir():
            shutil.copytree(src, dest / rel, dirs_exist_ok=True)
            found += 1
        elif src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
            found += 1
        else:
            print(f"sweep: {rel} was not produced", file=sys.stderr)
    values = dict(p.split("=", 1) for p in params if "=" in p)
    (dest / VARIANT_FILE).write_text(json.dumps({"params": values}, sort_keys=True) + "\n")
    return 0 if found else 1


def _metrics(vdir: Path, files: list[str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for f in files:
        p = vdir / f
        if p.is_file():
            data = json.loads(p.read_text())
            if isinstance(data, dict):
                merged.update(data)
    return merged


def pick(directory: Path, metrics_files: list[str], metric: str | None, goal: str | None,
         summary: Path | None) -> int:
    variants = sorted((p.name for p in directory.iterdir() if p.is_dir()), key=_variant_key) \
        if directory.is_dir() else []
    if not variants:
        print(f"sweep: no variants under {directory}", file=sys.stderr)
        return 2
    rows: list[tuple[str, dict[str, Any], float | None]] = []
    for v in variants:
        info_path = directory / v / VARIANT_FILE
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        value = _metrics(directory / v, metrics_files).get(metric) if metric else None
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
            else None
        rows.append((v, info.get("params", {}), number))
    best = rows[0]
    if metric:
        scored = [r for r in rows if r[2] is not None and not math.isnan(r[2])]
        if not scored:
            print(f"sweep: no variant reported the metric '{metric}'", file=sys.stderr)
            return 1
        sign = -1.0 if goal == "minimize" else 1.0
        best = max(scored, key=lambda r: sign * (r[2] or 0.0))  # first of equals wins
    src = directory / best[0]
    for item in sorted(src.rglob("*")):
        rel = item.relative_to(src)
        if item.is_file() and rel.as_posix() != VARIANT_FILE:
            (Path.cwd() / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, Path.cwd() / rel)
    lines = ["## Sweep", "", f"| variant | params | {metric or 'metric'} | |", "|---|---|---|---|"]
    for v, params, value in rows:
        shown = ", ".join(f"{k}={params[k]}" for k in sorted(params)) or "-"
        mark = "**chosen**" if v == best[0] else ""
        lines.append(f"| {v} | {shown} | {'' if value is None else f'{value:.4g}'} | {mark} |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if summary is not None:
        summary.write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlspec.compile.sweep")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stash")
    s.add_argument("--dir", required=True, type=Path)
    s.add_argument("--variant", required=True)
    s.add_argument("--param", action="append", default=[])
    s.add_argument("paths", nargs="+")
    p = sub.add_parser("pick")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--metrics", action="append", default=[])
    p.add_argument("--metric")
    p.add_argument("--goal", choices=["maximize", "minimize"])
    p.add_argument("--summary", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "stash":
        return stash(args.dir, args.variant, args.param, args.paths)
    return pick(args.dir, args.metrics, args.metric, args.goal, args.summary)


if __name__ == "__main__":
    raise SystemExit(main())
