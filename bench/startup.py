#!/usr/bin/env python3
"""Start-up budgets (docs/DESIGN.md §8) as ratios to the import floor, measured side by side.

The floor is `python -c "import typer, pydantic, ruamel.yaml, jinja2"`: what mlspec's own
dependencies cost in a bare interpreter. Each case is timed in *paired* runs (floor, command,
floor, command, …) so machine noise hits both alike; the figure is the median of the per-pair
ratios. mlspec is measured from a regular (non-editable) install of a freshly built wheel in a
throw-away venv: an editable install's import hook adds about 40% and hides what the code
costs.

    case                                  budget (× floor)
    mlspec --help                         1.2
    mlspec validate                       1.1
    mlspec compile --check                1.3
    mlspec run (no-op, examples/iris)     1.4

A reference row comes first: the floor plus `from pydantic import BaseModel, Field`, the model
machinery that any pydantic-validated spec needs and that typer >= 0.29 also imports when it
parses any command line (typer._adapters). It has no budget; it shows how much of each ratio
is pydantic's own import cost, which the floor does not count (`import pydantic` is lazy).

Usage: .venv/bin/python bench/startup.py [--runs 21] [--keep DIR]
Exits 1 when a ratio is over its budget. On a shared machine run it as
`chrt -f 50 .venv/bin/python bench/startup.py` (root). To see what a command imports:
  VENV/bin/python -X importtime VENV/bin/mlspec --help 2>&1 >/dev/null | sort -t'|' -k2 -n
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wheelbuild import build_wheel

REPO = Path(__file__).resolve().parent.parent
FLOOR = "import typer, pydantic, ruamel.yaml, jinja2"
PYDANTIC_MODELS = "from pydantic import BaseModel, Field"
CASES: list[tuple[str, list[str], float | None]] = [  # label, argv after `mlspec`, budget
    ("(floor + pydantic models)", [], None),
    ("mlspec --help", ["--help"], 1.2),
    ("mlspec validate", ["validate"], 1.1),
    ("mlspec compile --check", ["compile", "--check"], 1.3),
    ("mlspec run (no-op)", ["run"], 1.4),
]


def install(venv: Path) -> Path:
    """A regular install of a freshly built wheel with the [sklearn] extra that examples/iris
    needs (what its generated CI installs); returns the venv's python."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    wheel = build_wheel(venv / "wheels")
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"{wheel}[sklearn]"], check=True)
    return py


def project(where: Path, mlspec: Path) -> Path:
    """examples/iris in a git repository, run once so that `mlspec run` has nothing to do."""
    dest = where / "iris"
    shutil.copytree(REPO / "examples" / "iris", dest, ignore=shutil.ignore_patterns(
        "data", "model", "metrics.json", "params.json", ".mlspec", "__pycache__"))
    git = ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "iris"], cwd=dest, check=True)
    subprocess.run([str(mlspec), "run"], cwd=dest, check=True, capture_output=True)
    return dest


def once(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--keep", type=Path, help="build the venv here and keep it")
    opts = parser.parse_args()
    where = opts.keep or Path(tempfile.mkdtemp(prefix="mlspec-bench-"))
    where.mkdir(parents=True, exist_ok=True)
    py = where / "venv" / "bin" / "python"
    if not py.exists():
        py = install(where / "venv")
    mlspec = py.parent / "mlspec"
    iris = where / "iris"
    if not iris.exists():
        iris = project(where, mlspec)
    # bytecode cached, as on a user's machine
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    floor = [str(py), "-c", FLOOR]
    print(f"{opts.runs} paired runs each; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs; floor: python -c \"{FLOOR}\"")
    print(f"{'case':28} {'floor ms':>9} {'mlspec ms':>10} {'ratio':>6} {'budget':>7}")
    over = 0
    for label, args, budget in CASES:
        cmd = [str(mlspec), *args] if args else [str(py), "-c", f"{FLOOR}; {PYDANTIC_MODELS}"]
        once(floor, iris, env), once(cmd, iris, env)  # warm-up
        ratios, floors, cmds = [], [], []
        for _ in range(opts.runs):
            f = once(floor, iris, env)
            c = once(cmd, iris, env)
            floors.append(f)
            cmds.append(c)
            ratios.append(c / f)
        ratio = statistics.median(ratios)
        shown = "" if budget is None else f"{budget:6.1f}x"
        flag = "" if budget is None or ratio <= budget else "  OVER"
        over += budget is not None and ratio > budget
        print(f"{label:28} {statistics.median(floors):9.1f} {statistics.median(cmds):10.1f} "
              f"{ratio:5.2f}x {shown:>7}{flag}")
    if opts.keep is None:
        shutil.rmtree(where, ignore_errors=True)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
