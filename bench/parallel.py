#!/usr/bin/env python3
"""`mlspec run --jobs 2` against `--jobs 1` on a diamond pipeline, side by side.

    .venv/bin/python bench/parallel.py [--sleep 2] [--repeat 3] [--mlspec PATH]

The pipeline is a -> b, c -> d in a real git repository; b and c are independent and each
sleeps --sleep seconds (a and d are instant). Each measurement is `mlspec run --force
--jobs N` (every step executes), timed in alternating pairs after one warm-up run; the figure
is the median wall time. Budget (issue 14): --jobs 2 <= 0.6x --jobs 1. Exit 1 over budget.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
BUDGET = 0.6

SPEC = """\
version: 1
project: {name: diamond}
model:
  steps:
    a:
      command: python src/step.py a 0
      deps: [src/step.py]
      outs: [out/a.txt]
    b:
      command: python src/step.py b SLEEP out/a.txt
      deps: [src/step.py, out/a.txt]
      outs: [out/b.txt]
    c:
      command: python src/step.py c SLEEP out/a.txt
      deps: [src/step.py, out/a.txt]
      outs: [out/c.txt]
    d:
      command: python src/step.py d 0 out/b.txt out/c.txt
      deps: [src/step.py, out/b.txt, out/c.txt]
      outs: [out/d.txt]
"""

STEP = """\
import pathlib, sys, time
name, secs, ins = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
time.sleep(secs)
pathlib.Path("out").mkdir(exist_ok=True)
text = "".join(pathlib.Path(p).read_text() for p in ins) + name + "\\n"
pathlib.Path("out", name + ".txt").write_text(text)
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repo(repo: Path, sleep: float) -> None:
    repo.mkdir()
    (repo / "src").mkdir()
    (repo / "mlspec.yaml").write_text(SPEC.replace("SLEEP", f"{sleep:g}"))
    (repo / "src" / "step.py").write_text(STEP)
    (repo / ".gitignore").write_text(".mlspec/\nout/\nparams.json\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=bench@example.com", "-c", "user.name=bench", "add", "-A")
    git(repo, "-c", "user.email=bench@example.com", "-c", "user.name=bench",
        "commit", "-q", "-m", "diamond")


def timed(mlspec: str, repo: Path, jobs: int) -> float:
    t0 = time.monotonic()
    r = subprocess.run([mlspec, "run", "--force", "--no-gates", "--jobs", str(jobs)],
                       cwd=repo, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"mlspec run --jobs {jobs} failed:\n{r.stdout}{r.stderr}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sleep", type=float, default=2.0, help="seconds each of b and c takes")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mlspec", default=str(BIN / "mlspec"))
    args = ap.parse_args()
    env_path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["PATH"] = env_path  # `python` in a step: this venv's interpreter
    with tempfile.TemporaryDirectory() as tmp:
        seq, par = Path(tmp, "seq"), Path(tmp, "par")
        make_repo(seq, args.sleep)
        make_repo(par, args.sleep)
        timed(args.mlspec, seq, 1)  # warm-up: hash caches, .gitignore, lock
        timed(args.mlspec, par, 2)
        one, two = [], []
        for _ in range(args.repeat):
            one.append(timed(args.mlspec, seq, 1))
            two.append(timed(args.mlspec, par, 2))
        same = (seq / "mlspec.lock").read_bytes() == (par / "mlspec.lock").read_bytes()
    j1, j2 = statistics.median(one), statistics.median(two)
    ratio = j2 / j1
    print(f"diamond a -> b, c -> d; b and c sleep {args.sleep:g}s each; "
          f"`mlspec run --force --no-gates`, median of {args.repeat}")
    print(f"  --jobs 1: {j1:6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in one)})")
    print(f"  --jobs 2: {j2:6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in two)})")
    print(f"  ratio --jobs 2 / --jobs 1: {ratio:.2f} (budget <= {BUDGET}) "
          f"{'OK' if ratio <= BUDGET else 'OVER BUDGET'}")
    print(f"  mlspec.lock byte-identical between the two: {'yes' if same else 'NO'}")
    return 0 if ratio <= BUDGET and same else 1


if __name__ == "__main__":
    sys.exit(main())
