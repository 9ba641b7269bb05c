#!/usr/bin/env python3
"""Start-up budgets (DESIGN.md §8): wall time of `mlspec --help` (< 150 ms) and
`mlspec validate examples/iris/mlspec.yaml` (< 200 ms), median of N runs after a warm-up.

Usage: .venv/bin/python bench/startup.py [--runs 21] [--hyperfine]
  --hyperfine  also time with hyperfine when it is installed (apt-get install hyperfine)
Exits 1 when a median is over its budget. To see what an over-budget command imports:
  .venv/bin/python -X importtime .venv/bin/mlspec --help 2>&1 >/dev/null | sort -t'|' -k2 -n
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MLSPEC = Path(sys.executable).parent / "mlspec"

CASES = [
    ("mlspec --help", ["--help"], 150.0),
    ("mlspec validate examples/iris/mlspec.yaml", ["validate", "examples/iris/mlspec.yaml"],
     200.0),
]


def wall_ms(args: list[str], runs: int) -> list[float]:
    cmd = [str(MLSPEC), *args]
    subprocess.run(cmd, cwd=REPO, capture_output=True, check=True)  # warm-up: .pyc, page cache
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, capture_output=True, check=True)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--hyperfine", action="store_true")
    opts = parser.parse_args()
    if not MLSPEC.exists():
        print(f"no console script at {MLSPEC}; run ./dev.sh test (or pip install -e .) first",
              file=sys.stderr)
        return 2
    over = 0
    print(f"{'command':45} {'median':>8} {'min':>8} {'max':>8} {'budget':>8}")
    for label, args, budget in CASES:
        times = wall_ms(args, opts.runs)
        med = statistics.median(times)
        flag = "" if med < budget else "  OVER BUDGET"
        over += med >= budget
        print(f"{label:45} {med:7.1f}ms {min(times):7.1f}ms {max(times):7.1f}ms "
              f"{budget:7.0f}ms{flag}")
    hyperfine = shutil.which("hyperfine")
    if opts.hyperfine and hyperfine:
        for label, args, _ in CASES:
            cmd = " ".join([str(MLSPEC), *args])
            subprocess.run([hyperfine, "-N", "--warmup", "3", "--runs", str(opts.runs),
                            "--command-name", label, cmd], cwd=REPO, check=True)
    elif opts.hyperfine:
        print("hyperfine is not installed (apt-get install hyperfine); python timer only")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
