"""Benchmark of the gitlab target: `python bench/compile_gitlab.py`.

Prints median wall times of: `mlspec compile --target gitlab --check` on examples/iris as a
subprocess (imports included); and, for iris and generated chains of 250 and 1,000 steps,
the three phases in-process: load + validate the spec, build the plan, render GitLab (the part
this target owns). The machine is shared, so compare the phases of one run with each other.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "examples" / "iris"


def median_ms(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def phases(spec: Path, n: int) -> str:
    from mlspec.compile.planner import build_plan
    from mlspec.compile.targets.gitlab.pipeline import render
    from mlspec.spec.loader import load_spec

    loaded = load_spec(spec)
    plan = build_plan(loaded)
    size = len(render(plan)[".gitlab-ci.yml"])
    return (f"load {median_ms(lambda: load_spec(spec), n):7.0f} ms | "
            f"plan {median_ms(lambda: build_plan(loaded), n):7.0f} ms | "
            f"gitlab render {median_ms(lambda: render(plan), n):7.0f} ms | {size} bytes")


def chain_spec(directory: Path, n: int) -> Path:
    lines = ["version: 1", 'project: {name: chain, python: "3.11"}', "data:", "  steps:"]
    for i in range(n):
        dep = f"[src/s.py, out/{i - 1}.csv]" if i else "[src/s.py]"
        lines.append(f"    s{i}: {{command: python src/s.py {i}, deps: {dep}, "
                     f"outs: [out/{i}.csv]}}")
    lines.append("ci: {targets: [gitlab]}")
    (directory / "src").mkdir(parents=True)
    (directory / "src" / "s.py").write_text("print('x')\n")
    (directory / "mlspec.yaml").write_text("\n".join(lines) + "\n")
    return directory / "mlspec.yaml"


def main() -> None:
    exe = Path(sys.executable).parent / "mlspec"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "iris"
        shutil.copytree(IRIS, work)
        cli = median_ms(lambda: subprocess.run([str(exe), "compile", "--target", "gitlab",
                                                "--check"], cwd=work, check=True,
                                               capture_output=True), 9)
        print(f"mlspec compile --target gitlab --check, iris (process): {cli:.0f} ms")
        print(f"iris:             {phases(IRIS / 'mlspec.yaml', 15)}")
        for n in (250, 1000):
            spec = chain_spec(Path(tmp) / f"chain{n}", n)
            print(f"{n:4d}-step chain: {phases(spec, 3)}")


if __name__ == "__main__":
    main()
