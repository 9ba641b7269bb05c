#!/usr/bin/env python3
"""Wall time of `mlspec metrics --history --limit 200` beside the import floor, in one run.

    .venv/bin/python bench/history.py [--commits 200] [--repeat 7]

Builds a real git repository (`git fast-import`, then checked out) whose default branch has
--commits commits, each changing mlspec.lock (three steps with deps, outs, params and metrics,
as a real project's lock), with a release tag every 10 commits, and a PR branch whose working
tree changes the lock. Then times, median of --repeat runs after one warm-up:
`python -c "import mlspec"`, `mlspec --help`, `mlspec validate` (the floor of any command that
loads a spec), and `mlspec metrics --history --limit N` (all commits). CPU time (user + sys of
mlspec and its git subprocesses) is printed beside wall time because it barely moves when the
machine is busy. Budget (issue 14): the history command under 1 s.
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
BUDGET = 1.0


def timed(cmd: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    """(median wall time, median CPU time of the child and its git subprocesses)."""
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    times, cpu = [], []
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(times), statistics.median(cpu)


def real_lock(i: int) -> str:
    """A lock as `mlspec run` writes it for a three-step project, different in every commit."""
    from mlspec.run.lock import Lock, StepLock

    h = f"sha256:{i:064x}"
    steps = {
        "prepare": StepLock(h, "python src/prepare.py", {"src/prepare.py": h},
                            {"rows": 1000 + i}, {"data/train.csv": h, "data/test.csv": h}),
        "train": StepLock(h, "python src/train.py", {"src/train.py": h, "data/train.csv": h},
                          {"n_estimators": 100 + i, "max_depth": 5}, {"model/model.pkl": h}),
        "evaluate": StepLock(h, "python src/evaluate.py",
                             {"src/evaluate.py": h, "model/model.pkl": h, "data/test.csv": h},
                             {}, {"metrics.json": h},
                             {"accuracy": 0.8 + i / 1000, "f1_macro": 0.79 + i / 1000,
                              "log_loss": 0.5 - i / 1000}),
    }
    return Lock(env={"python": "3.11", "requirements": h}, steps=steps).dump()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=7)
    ns = ap.parse_args()
    from conftest import git
    from history_repo import fast_history

    bindir = Path(sys.executable).parent
    mlspec = str(bindir / "mlspec")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        fast_history(root, [real_lock(i) for i in range(ns.commits)],
                     annotated={i: f"v0.{i}.0" for i in range(0, ns.commits, 10)})
        git("checkout", "-q", "-b", "pr", cwd=root)
        (root / "mlspec.lock").write_text(real_lock(ns.commits))
        history = [mlspec, "metrics", "--history", "--limit", str(ns.commits)]
        out = subprocess.run(history, cwd=root, check=True, capture_output=True, text=True)
        points = len(out.stdout.splitlines()) - 3  # header, rule, "(* primary metric)"
        assert points == ns.commits + 1, out.stdout[-500:]
        rows = [
            ('python -c "import mlspec"', [sys.executable, "-c", "import mlspec"]),
            ("mlspec --help", [mlspec, "--help"]),
            ("mlspec validate", [mlspec, "validate"]),
            (f"mlspec metrics --history --limit {ns.commits}", history),
        ]
        print(f"{ns.commits} commits each changing mlspec.lock, {len(range(0, ns.commits, 10))}"
              f" release tags; {points} points listed; median of {ns.repeat} "
              f"(load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)")
        print(f"{'command':<44} {'wall':>8} {'cpu':>8}")
        results = {}
        for name, cmd in rows:
            wall, cpu = timed(cmd, root, ns.repeat)
            results[name] = wall
            print(f"{name:<44} {wall * 1000:>6.0f}ms {cpu * 1000:>6.0f}ms")
        hist = results[rows[-1][0]]
        extra = hist - results["mlspec validate"]
        print(f"history over validate: +{extra * 1000:.0f} ms; budget {BUDGET:.1f} s: "
              f"{'ok' if hist < BUDGET else 'OVER'}")


if __name__ == "__main__":
    main()
