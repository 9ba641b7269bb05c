"""Benchmark `mlspec compile` (docs/DESIGN.md §8): examples/iris under 250 ms wall, 1,000 steps
under 2 s, and growth linear in the number of steps (100 / 1,000 / 5,000).

    .venv/bin/python bench/compile.py [--repeat 5]

Wall time is the real console script in a subprocess (interpreter start included), best of
--repeat runs, compiling into a fresh copy each time. For the generated specs the time is
also split, in process, into loading + validating the spec (mlspec.spec, mlspec.spec.graph) and
the compile pipeline proper (plan + render). The generated specs are N/5 independent
5-step pipelines (fetch -> clean -> features -> train -> evaluate, evaluate also reading the
features), the shape of a repository holding many models; every job downloads the outs of its
whole upstream closure, so a spec that is one deep chain grows with the square of its depth
(see `--chain`).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MLSPEC = Path(sys.executable).parent / "mlspec"


def generated_spec(dest: Path, steps: int, chain: bool = False) -> Path:
    dest.mkdir(parents=True)
    (dest / "src").mkdir()
    (dest / "src" / "run.py").write_text("print('step')\n")
    lines = ["version: 1", "project: {name: bench, python: \"3.11\"}", "design:",
             "  hypothesis: many models", "  metrics: {score: {goal: maximize, primary: true}}",
             "model:", "  steps:"]
    for i in range(steps):
        if chain:
            deps = ["src/run.py"] + ([f"out/s{i - 1}.csv"] if i else [])
            lines.append(f"    s{i}: {{command: python src/run.py {i}, deps: [{', '.join(deps)}], "
                         f"outs: [out/s{i}.csv]}}")
            continue
        p, k = divmod(i, 5)
        name = ["fetch", "clean", "features", "train", "evaluate"][k]
        deps = ["src/run.py"]
        if k:
            deps.append(f"p{p}/{['fetch', 'clean', 'features', 'train'][k - 1]}.out")
        if k == 4:
            deps.append(f"p{p}/features.out")
        extra = f", metrics: p{p}/metrics.json" if k == 4 else f", outs: [p{p}/{name}.out]"
        lines.append(f"    {name}-{p}: {{command: python src/run.py {name}, "
                     f"deps: [{', '.join(deps)}]{extra}}}")
    lines += ["  gates: [score >= 0.5]", "ci: {targets: [github]}"]
    (dest / "mlspec.yaml").write_text("\n".join(lines) + "\n")
    return dest


CPU: list[float] = []  # CPU seconds (user + sys) of the best wall run of the last wall()


def validate_wall(repo: Path, repeat: int) -> float:
    """`mlspec validate` under the same conditions: the floor compile builds on."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([str(MLSPEC), "validate"], cwd=repo, capture_output=True, check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def wall(repo: Path, repeat: int) -> tuple[float, int]:
    best = float("inf")
    size = 0
    for _ in range(repeat):
        shutil.rmtree(repo / ".github", ignore_errors=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run([str(MLSPEC), "compile", "--target", "github"], cwd=repo,
                             capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if elapsed < best:
            best = elapsed
            CPU[:] = [after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime]
        if res.returncode != 0:
            sys.exit(res.stderr)
        size = sum(p.stat().st_size for p in (repo / ".github" / "workflows").iterdir())
    return best, size


def in_process(repo: Path) -> tuple[float, float]:
    """(load + validate seconds, plan + render seconds) inside one process, best of 2."""
    from mlspec.compile.driver import render_all
    from mlspec.spec.loader import load_spec

    t_load = t_render = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        loaded = load_spec(repo / "mlspec.yaml")
        t1 = time.perf_counter()
        render_all(loaded, "github")
        t2 = time.perf_counter()
        t_load, t_render = min(t_load, t1 - t0), min(t_render, t2 - t1)
    return t_load, t_render


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--chain", action="store_true", help="also time one deep chain")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        iris = Path(tmp) / "iris"
        shutil.copytree(REPO / "examples" / "iris", iris,
                        ignore=shutil.ignore_patterns(".github", "data", "model", ".mlspec"))
        t_validate = validate_wall(iris, args.repeat)
        t, size = wall(iris, args.repeat)
        print(f"examples/iris validate {t_validate * 1000:8.0f} ms  (the floor compile adds to)")
        print(f"examples/iris          {t * 1000:8.0f} ms  ({size / 1024:.0f} KiB)  "
              f"cpu {CPU[0] * 1000:.0f} ms  budget 250 ms")
        rows = []
        for n in (100, 1000, 5000):
            repo = generated_spec(Path(tmp) / f"n{n}", n)
            t, size = wall(repo, max(1, args.repeat if n < 5000 else 2))
            load, render = in_process(repo)
            rows.append((n, t, load, render))
            budget = "  budget 2000 ms" if n == 1000 else ""
            print(f"{n:5d} steps            {t * 1000:8.0f} ms  ({size / 1024:.0f} KiB)"
                  f"  cpu {CPU[0] * 1000:.0f} ms  {t / n * 1e6:6.0f} us/step{budget}")
            print(f"      in process: load+validate {load * 1000:7.0f} ms, "
                  f"plan+render {render * 1000:6.0f} ms ({render / n * 1e6:.0f} us/step)")
        for i, what in ((1, "wall"), (2, "load+validate"), (3, "plan+render")):
            a, b = rows[1][i], rows[2][i]
            print(f"growth 1,000 -> 5,000 steps, {what}: x{b / a:.2f} for x5 steps")
        if args.chain:
            for n in (100, 300):
                repo = generated_spec(Path(tmp) / f"chain{n}", n, chain=True)
                t, size = wall(repo, 1)
                print(f"chain of {n:4d}          {t * 1000:8.0f} ms  ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
