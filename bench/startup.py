#!/usr/bin/env python3
"""Start-up budgets (DESIGN.md §8): wall time of `mlspec --help` (< 150 ms) and
`mlspec validate examples/iris/mlspec.yaml` (< 200 ms), median of N runs after a warm-up.

Usage: .venv/bin/python bench/startup.py [--runs 21] [--hyperfine]
  --hyperfine  also time with hyperfine when it is installed (apt-get install hyperfine)
Exits 1 when a median is over its budget. On a machine shared with other work, run it as
`chrt -f 50 .venv/bin/python bench/startup.py` (root) so other processes do not inflate the wall
times. To see what an over-budget command imports:
  .venv/bin/python -X importtime .venv/bin/mlspec --help 2>&1 >/dev/null | sort -t'|' -k2 -n
"""

from __future__ import annotations

import argparse
import os
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


# context, not a budget: what importing mlspec's dependencies alone costs in a bare interpreter
FLOOR = ("(floor: import typer, pydantic, ruamel.yaml)",
         [sys.executable, "-c", "import typer, pydantic, pydantic.types, ruamel.yaml"])


def timed(args: list[str], runs: int, cmd: list[str] | None = None
          ) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + sys) milliseconds of each run.

    CPU time is reported too because it hardly moves when other work shares the machine,
    while wall time does: compare the two before trusting a wall figure on a busy box.
    """
    cmd = cmd or [str(MLSPEC), *args]
    # as on a user's machine, bytecode is cached: PYTHONDONTWRITEBYTECODE (set in some dev
    # shells) would make every run recompile mlspec's sources and add ~20 ms
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, cwd=REPO, capture_output=True, check=True, env=env)  # warm-up
    wall, cpu = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall.append((time.perf_counter() - start) * 1000)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
        cpu.append((usage.ru_utime + usage.ru_stime) * 1000)
    return wall, cpu


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
    load = os.getloadavg()[0]
    print(f"{opts.runs} runs each; load average {load:.2f} on {os.cpu_count()} CPUs")
    print(f"{'command':45} {'wall median':>11} {'min':>8} {'max':>8} {'cpu median':>10} "
          f"{'budget':>8}")
    for label, args, budget in CASES:
        wall, cpu = timed(args, opts.runs)
        med = statistics.median(wall)
        flag = "" if med < budget else "  OVER BUDGET"
        over += med >= budget
        print(f"{label:45} {med:9.1f}ms {min(wall):6.1f}ms {max(wall):6.1f}ms "
              f"{statistics.median(cpu):8.1f}ms {budget:6.0f}ms{flag}")
    wall, cpu = timed([], opts.runs, FLOOR[1])
    print(f"{FLOOR[0]:45} {statistics.median(wall):9.1f}ms {min(wall):6.1f}ms "
          f"{max(wall):6.1f}ms {statistics.median(cpu):8.1f}ms")
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
