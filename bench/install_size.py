#!/usr/bin/env python3
"""What the `sklearn` extra saves: install time and venv size, core vs core + [sklearn].

One run, side by side. The mlspec wheel is built once (`pip wheel --no-deps` from a copy of the
tree), the wheelhouse is filled once (`pip download` of `WHEEL[sklearn]`, which holds every
wheel either case needs), then each case is installed offline into a fresh venv
(`pip install --no-index --find-links WHEELHOUSE`), alternating core / sklearn so machine noise
hits both alike. Reported: the median install time, the venv's size on disk minus an empty
venv's, the number of distributions and the bytes of wheels the install needs (what CI
downloads on a cold cache).

Usage: .venv/bin/python bench/install_size.py [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wheelbuild import build_wheel

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = Path(root, f)
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def install(tmp: Path, wheelhouse: Path, req: str, tag: str) -> dict[str, float]:
    venv = tmp / f"venv-{tag}"
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    empty = du(venv)
    report = tmp / f"report-{tag}.json"
    t0 = time.perf_counter()
    subprocess.run([*PIP, "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-index", "--find-links", str(wheelhouse), "--report", str(report),
                    req], check=True, env={**os.environ, "PIP_CONSTRAINT": ""})
    seconds = time.perf_counter() - t0
    items = json.loads(report.read_text())["install"]
    wheel_bytes = 0
    for item in items:
        url = item["download_info"]["url"]
        if url.startswith("file://"):
            wheel_bytes += Path(url[len("file://"):]).stat().st_size
    return {"seconds": seconds, "venv_mb": (du(venv) - empty) / 1e6,
            "dists": float(len(items)), "wheels_mb": wheel_bytes / 1e6}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = ap.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="mlspec-install-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        wheel = build_wheel(tmp)
        wheelhouse = tmp / "wheelhouse"
        subprocess.run([*PIP, "download", "-q", "-d", str(wheelhouse), f"{wheel}[sklearn]"],
                       check=True)
        shutil.copy(wheel, wheelhouse)
        cases = {"core": str(wheel), "core + [sklearn]": f"{wheel}[sklearn]"}
        results: dict[str, list[dict[str, float]]] = {k: [] for k in cases}
        for i in range(args.runs):
            for label, req in cases.items():
                r = install(tmp, wheelhouse, req, "sk" if "sklearn" in label else "core")
                results[label].append(r)
                print(f"run {i + 1}: {label:<17} {r['seconds']:6.1f} s", file=sys.stderr)
        print(f"{'case':<18} {'install s (median)':>18} {'venv MB':>8} {'dists':>6} "
              f"{'wheels MB':>10}")
        for label, rs in results.items():
            print(f"{label:<18} {statistics.median(r['seconds'] for r in rs):>18.1f} "
                  f"{rs[-1]['venv_mb']:>8.1f} {rs[-1]['dists']:>6.0f} "
                  f"{rs[-1]['wheels_mb']:>10.1f}")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
