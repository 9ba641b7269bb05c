#!/usr/bin/env python3
"""Load + validate of generated specs of 1,000 and 5,000 steps: growth must be linear (x5).

    .venv/bin/python bench/scale.py [--repeat 3]

The specs are bench/compile.py's (N/5 independent 5-step pipelines). Each figure is the best
of --repeat loads in this process, in CPU time (process_time), which a loaded machine
disturbs far less than wall time; wall time is printed beside it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compile import generated_spec

from mlspec.spec.loader import load_spec


def best(spec: Path, repeat: int) -> tuple[float, float]:
    cpu = wall = float("inf")
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        load_spec(spec)
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - w0)
    return cpu, wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        specs = {n: generated_spec(Path(tmp) / f"n{n}", n) / "mlspec.yaml" for n in (1000, 5000)}
        load_spec(specs[1000])  # warm: the validators are built once per process
        figures = {n: best(spec, args.repeat) for n, spec in specs.items()}
    for n, (cpu, wall) in figures.items():
        print(f"{n:5d} steps: load+validate cpu {cpu * 1000:7.0f} ms  wall {wall * 1000:7.0f} ms"
              f"  ({cpu / n * 1e6:.0f} us/step)")
    growth = figures[5000][0] / figures[1000][0]
    print(f"growth 1,000 -> 5,000 steps (cpu): x{growth:.2f} for x5 steps")
    return 0 if growth <= 5.25 else 1


if __name__ == "__main__":
    sys.exit(main())
