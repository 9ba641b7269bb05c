#!/usr/bin/env python3
"""`mlspec run` / `mlspec status` against `dvc repro` / `dvc status`, side by side.

    .venv/bin/python bench/run_vs_dvc.py [--repeat 10] [--files 10000] [--mlspec PATH]
                                         [--iris-only]

1. examples/iris with every step fresh: `mlspec run` (gates included) and `mlspec run
   --no-gates`, against `dvc repro` on the equivalent dvc.yaml. Budget: mlspec < 300 ms and
   faster than dvc; and, timed in alternating pairs, no-op `mlspec run` <= 0.35x no-op
   `dvc repro` (issue 16). Give --mlspec a regular install (bench/startup.py --keep DIR
   builds one: DIR/venv/bin/mlspec); an editable install's import hook adds ~40%.
2. A dataset of N files (default 10,000) as a directory dep, everything fresh: `mlspec status`
   against `dvc status`. Budget: < 1 s.

DVC is installed into its own venv, bench/.venv-dvc, on first use (pip). Both tools run the
same scripts with the same interpreter (this venv's python, which has scikit-learn). Each
figure is the median wall time of --repeat runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MLSPEC = str(BIN / "mlspec")
DVC_VENV = REPO / "bench" / ".venv-dvc"
DVC = str(DVC_VENV / "bin" / "dvc")
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
       "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATE_CHECK": "1", "GIT_AUTHOR_NAME": "bench",
       "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "bench@example.com"}

IRIS_DVC = """\
stages:
  prepare:
    cmd: python src/prepare.py --out data/iris.csv
    deps: [src/prepare.py]
    outs: [data/iris.csv]
  train:
    cmd: python src/train.py
    deps: [src/train.py, data/iris.csv, params.json]
    outs: [model/model.pkl]
  evaluate:
    cmd: python src/evaluate.py
    deps: [src/evaluate.py, src/train.py, model/model.pkl, data/iris.csv]
    metrics: [metrics.json: {cache: false}]
"""

MANY_SPEC = """\
version: 1
project: {name: many}
model:
  steps:
    count:
      command: python count.py
      deps: [count.py, data/raw/]
      outs: [out/count.txt]
"""
MANY_DVC = """\
stages:
  count:
    cmd: python count.py
    deps: [count.py, data/raw]
    outs: [out/count.txt]
"""
COUNT = ("import os, pathlib\npathlib.Path('out').mkdir(exist_ok=True)\n"
         "pathlib.Path('out/count.txt').write_text(str(len(os.listdir('data/raw'))))\n")


def sh(*cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


CPU: dict[float, float] = {}  # median wall -> median CPU (user + sys) of the same runs


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(cmd: list[str], cwd: Path, repeat: int) -> float:
    """Median wall time; the median CPU time (user + sys) is kept in CPU, since on a loaded
    machine wall time measures the neighbours as much as the tool."""
    sh(*cmd, cwd=cwd)  # warm-up
    time.sleep(2.1)  # let just-written outs age past the hash cache's racy window
    sh(*cmd, cwd=cwd)
    times, cpus = [], []
    for _ in range(repeat):
        c0, t0 = _cpu(), time.perf_counter()
        sh(*cmd, cwd=cwd)
        times.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    wall = statistics.median(times)
    CPU[wall] = statistics.median(cpus)
    return wall


PAIRED: dict[str, float] = {}  # the paired no-op figures on iris


def paired(a: list[str], a_cwd: Path, b: list[str], b_cwd: Path, repeat: int
           ) -> dict[str, float]:
    """a and b run alternately (a, b, a, b, …) so that machine noise hits both alike: the
    median of each one's wall times and the median of the per-pair ratios a / b."""
    for cmd, cwd in ((a, a_cwd), (b, b_cwd)):
        sh(*cmd, cwd=cwd)  # warm-up
    time.sleep(2.1)
    ta, tb, ratios = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sh(*a, cwd=a_cwd)
        t1 = time.perf_counter()
        sh(*b, cwd=b_cwd)
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
        ratios.append((t1 - t0) / (t2 - t1))
    return {"a": statistics.median(ta), "b": statistics.median(tb),
            "ratio": statistics.median(ratios)}


def ensure_dvc() -> None:
    if Path(DVC).exists():
        return
    print("installing dvc into bench/.venv-dvc …", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
    subprocess.run([str(DVC_VENV / "bin" / "pip"), "install", "-q", "dvc"], check=True)


def git_repo(path: Path) -> None:
    sh("git", "init", "-q", "-b", "main", cwd=path)
    sh("git", "add", "-A", cwd=path)
    sh("git", "commit", "-q", "-m", "init", cwd=path)


def iris(tmp: Path, repeat: int) -> dict[str, float]:
    ignore = shutil.ignore_patterns("data", "model", "metrics.json", "params.json", ".mlspec",
                                    "__pycache__")
    m = tmp / "iris-mlspec"
    shutil.copytree(REPO / "examples" / "iris", m, ignore=ignore)
    git_repo(m)
    sh(MLSPEC, "run", cwd=m)  # first run: trains; everything is fresh afterwards
    d = tmp / "iris-dvc"
    shutil.copytree(REPO / "examples" / "iris", d, ignore=ignore)
    (d / "mlspec.lock").unlink(missing_ok=True)
    (d / "params.json").write_text('{"max_depth": 5, "n_estimators": 100, "random_state": 42}\n')
    (d / "dvc.yaml").write_text(IRIS_DVC)
    git_repo(d)
    sh(DVC, "init", "-q", cwd=d)
    sh(DVC, "repro", cwd=d)
    PAIRED.update(paired([MLSPEC, "run"], m, [DVC, "repro"], d, repeat))
    return {
        "mlspec run (iris, all fresh, gates)": timed([MLSPEC, "run"], m, repeat),
        "mlspec run --no-gates (iris, all fresh)": timed([MLSPEC, "run", "--no-gates"], m,
                                                         repeat),
        "dvc repro (iris, all fresh)": timed([DVC, "repro"], d, repeat),
    }


def many(tmp: Path, repeat: int, n: int) -> dict[str, float]:
    src = tmp / "raw"
    src.mkdir()
    for i in range(n):
        (src / f"f{i:05d}.txt").write_text(f"{i}\n" * 10)
    results = {}
    for tool, spec_name, spec in (("mlspec", "mlspec.yaml", MANY_SPEC), ("dvc", "dvc.yaml",
                                                                        MANY_DVC)):
        repo = tmp / f"many-{tool}"
        (repo / "data").mkdir(parents=True)
        shutil.copytree(src, repo / "data" / "raw")
        (repo / spec_name).write_text(spec)
        (repo / "count.py").write_text(COUNT)
        (repo / ".gitignore").write_text("/data/\n/out/\n/.mlspec/\n/params.json\n")
        git_repo(repo)
        if tool == "mlspec":
            sh(MLSPEC, "run", cwd=repo)
            results[f"mlspec status ({n:,} files)"] = timed([MLSPEC, "status"], repo, repeat)
            results[f"mlspec run ({n:,} files, fresh)"] = timed([MLSPEC, "run"], repo, repeat)
        else:
            sh(DVC, "init", "-q", cwd=repo)
            sh(DVC, "repro", cwd=repo)
            results[f"dvc status ({n:,} files)"] = timed([DVC, "status"], repo, repeat)
            results[f"dvc repro ({n:,} files, fresh)"] = timed([DVC, "repro"], repo, repeat)
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--mlspec", help="the mlspec console script to time (default: this "
                    "venv's; give a regular, non-editable install's for honest figures)")
    ap.add_argument("--iris-only", action="store_true", help="skip the N-files dataset")
    args = ap.parse_args()
    global MLSPEC
    MLSPEC = args.mlspec or MLSPEC
    ensure_dvc()
    version = sh(DVC, "--version", cwd=REPO).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="mlspec-bench-") as t:
        tmp = Path(t)
        results = iris(tmp, args.repeat)
        if not args.iris_only:
            results.update(many(tmp, args.repeat, args.files))
    load = os.getloadavg()[0]
    print(f"median of {args.repeat} runs (dvc {version}, {os.cpu_count()} cpus, "
          f"load average {load:.1f})")
    width = max(len(k) for k in results)
    print(f"  {'':{width}}  {'wall':>7}     {'cpu':>7}")
    for k, v in results.items():
        print(f"  {k.ljust(width)}  {v * 1000:7.0f} ms  {CPU[v] * 1000:7.0f} ms")
    print(f"  paired, {args.repeat} pairs: no-op mlspec run {PAIRED['a'] * 1000:.0f} ms, no-op "
          f"dvc repro {PAIRED['b'] * 1000:.0f} ms, median ratio {PAIRED['ratio']:.2f}x "
          "(budget 0.35x)")
    checks = [
        ("mlspec run (iris) < 300 ms", results["mlspec run (iris, all fresh, gates)"] < 0.3),
        ("mlspec run faster than dvc repro", results["mlspec run (iris, all fresh, gates)"]
         < results["dvc repro (iris, all fresh)"]),
        ("no-op mlspec run <= 0.35x no-op dvc repro (paired)", PAIRED["ratio"] <= 0.35),
    ]
    if not args.iris_only:
        checks += [
            (f"mlspec status ({args.files:,} files) < 1 s",
             results[f"mlspec status ({args.files:,} files)"] < 1.0),
            ("mlspec status faster than dvc status",
             results[f"mlspec status ({args.files:,} files)"]
             < results[f"dvc status ({args.files:,} files)"]),
        ]
    for name, ok in checks:
        print(f"  {'ok  ' if ok else 'MISS'} {name}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
