#!/usr/bin/env python3
"""Wall time of the GitOps commands on a small real history.

    .venv/bin/python bench/gitops_bench.py [--repeat 10] [--tags 50]

Builds the toy project of tests/gitops (main with a committed baseline, a branch that changes
a param and reruns), then times `mlspec metrics --diff main`, `mlspec report --base main`,
`mlspec metrics` (base found automatically), `mlspec lineage <tag>`, and `mlspec models` with
--tags release tags (each tag reads its lock and spec from git). Median of --repeat runs after
one warm-up; CPU time (user + sys of mlspec and its git subprocesses) is printed beside wall
time because it barely moves when the machine is busy. docs/docs/DESIGN.md sets no budget for these;
the figures guard against regressions (e.g. one git subprocess per file).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "gitops")]


def timed(args: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    """(median wall time, median CPU time of the child and its git subprocesses)."""
    exe = Path(sys.executable).parent / "mlspec"
    env = {**os.environ, "GIT_COMMITTER_DATE": "2026-03-01T00:00:00Z"}
    subprocess.run([str(exe), *args], cwd=cwd, check=True, capture_output=True, env=env)
    times, cpu = [], []
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([str(exe), *args], cwd=cwd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--tags", type=int, default=50)
    ns = ap.parse_args()
    from conftest import git
    from gitops_helpers import build_history

    with tempfile.TemporaryDirectory() as tmp:
        root = build_history(Path(tmp) / "repo")
        for i in range(ns.tags):
            git("tag", "-a", "-m", f"release {i}", f"v1.{i}.0", "main", cwd=root)
        rows = [
            ("metrics --diff main", ["metrics", "--diff", "main"]),
            ("metrics (auto base)", ["metrics"]),
            ("metrics --format json", ["metrics", "--diff", "main", "--format", "json"]),
            ("report --base main", ["report", "--base", "main"]),
            ("lineage v1.0.0", ["lineage", "v1.0.0"]),
            ("lineage --model-card", ["lineage", "v1.0.0", "--model-card"]),
            (f"models ({ns.tags} tags)", ["models"]),
            ("--help (floor)", ["--help"]),
        ]
        print(f"load average {os.getloadavg()[0]:.1f}; medians of {ns.repeat} runs")
        print(f"{'command':<28} {'wall ms':>8} {'cpu ms':>8}")
        for label, args in rows:
            wall, cpu = timed(args, root, ns.repeat)
            print(f"{label:<28} {wall * 1000:8.0f} {cpu * 1000:8.0f}")


if __name__ == "__main__":
    main()
