"""Benchmark the drift check of `mlspec monitor` on a large live sample: time and peak memory.

    .venv/bin/python bench/drift.py [--rows 1000000] [--features 4]

Writes a reference sample (100,000 rows) and a live sample of --rows rows (CSV and serve's
JSON-lines request log) to a temporary directory, records the profile (`mlspec profile`'s
function), then measures, each in a fresh subprocess (peak RSS = the child's VmHWM; Linux):

- `stream-csv` / `stream-jsonl`: mlspec.monitor.drift.drift_metrics (chunked, the shipped path);
- `numpy-load`: the pandas-free alternative: np.loadtxt of the whole CSV, then the same
  per-bin counts in memory (np.searchsorted + np.bincount);
- `scipy-exact`: np.loadtxt of both samples and scipy.stats.ks_2samp per feature (the exact
  two-sample KS the streamed one approximates), to compare the statistic as well;
- `profile-csv`: building the profile of the live CSV itself (two streamed passes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PRELUDE = """
import json, sys, time
from pathlib import Path
import numpy as np
t0 = time.perf_counter()
"""
EPILOGUE = """
wall = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report its
# parent's peak (the sample writer's) whenever that is higher
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"wall_s": round(wall, 3), "peak_rss_mib": round(int(hwm) / 1024, 1),
                  "result": result}))
"""
CASES = {
    "stream-csv": """
from mlspec.monitor.drift import drift_metrics
from mlspec.monitor.profile import read_profile
m = drift_metrics(read_profile(Path(D, "profile.json"), "p"), Path(D, "live.csv"), "live")
result = {"ks_max": m["ks_max"], "psi_max": m["psi_max"], "n": m["n_live"]}
""",
    "stream-jsonl": """
from mlspec.monitor.drift import drift_metrics
from mlspec.monitor.profile import read_profile
m = drift_metrics(read_profile(Path(D, "profile.json"), "p"), Path(D, "live.jsonl"), "live")
result = {"ks_max": m["ks_max"], "psi_max": m["psi_max"], "n": m["n_live"]}
""",
    "numpy-load": """
from mlspec.monitor.drift import ks, psi
from mlspec.monitor.profile import read_profile
prof = read_profile(Path(D, "profile.json"), "p")
x = np.loadtxt(Path(D, "live.csv"), delimiter=",", skiprows=1, ndmin=2)
k, p = [], []
for i, f in enumerate(prof.features.values()):
    c = np.bincount(np.searchsorted(np.asarray(f.edges), x[:, i], side="right"),
                    minlength=len(f.counts))
    k.append(ks(np, f.counts, c)); p.append(psi(np, f.counts, c))
result = {"ks_max": round(max(k), 6), "psi_max": round(max(p), 6), "n": len(x)}
""",
    "scipy-exact": """
from scipy.stats import ks_2samp
r = np.loadtxt(Path(D, "ref.csv"), delimiter=",", skiprows=1, ndmin=2)
x = np.loadtxt(Path(D, "live.csv"), delimiter=",", skiprows=1, ndmin=2)
result = {"ks_max": round(max(ks_2samp(r[:, i], x[:, i]).statistic
                               for i in range(x.shape[1])), 6), "n": len(x)}
""",
    "profile-csv": """
from mlspec.monitor.profile import build_profile
prof = build_profile(Path(D, "live.csv"), "live")
result = {"rows": prof.rows}
""",
}


def write_samples(d: Path, rows: int, features: int) -> None:
    import numpy as np

    from mlspec.monitor.profile import build_profile

    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(features)]
    header = ",".join(names) + "\n"
    with (d / "ref.csv").open("w") as fh:
        fh.write(header)
        np.savetxt(fh, rng.normal(0, 1, (100_000, features)), delimiter=",", fmt="%.10g")
    (d / "profile.json").write_text(build_profile(d / "ref.csv", "ref").to_json())
    with (d / "live.csv").open("w") as csv_fh, (d / "live.jsonl").open("w") as log:
        csv_fh.write(header)
        done = 0
        while done < rows:
            n = min(100_000, rows - done)
            block = rng.normal(0, 1, (n, features))
            block[:, 0] += 0.1  # a small shift in the first feature
            np.savetxt(csv_fh, block, delimiter=",", fmt="%.10g")
            log.writelines(json.dumps({"inputs": dict(zip(names, map(float, row),
                                                          strict=True)),
                                       "prediction": 0}) + "\n" for row in block)
            done += n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_samples(d, args.rows, args.features)
        sizes = {p.name: round(p.stat().st_size / 2**20, 1) for p in d.iterdir()}
        print(f"{args.rows} live rows x {args.features} features; files (MiB): {sizes}")
        baseline = subprocess.run([sys.executable, "-c", PRELUDE + "result = None" + EPILOGUE],
                                  capture_output=True, text=True, check=True)
        base = json.loads(baseline.stdout)["peak_rss_mib"]
        print(f"interpreter + numpy alone: peak RSS {base} MiB")
        results = {}
        for name, body in CASES.items():
            code = PRELUDE + f"D = {tmp!r}\n" + textwrap.dedent(body) + EPILOGUE
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True)
            results[name] = json.loads(out.stdout)
            r = results[name]
            print(f"{name:13s} wall {r['wall_s']:7.2f} s   peak RSS {r['peak_rss_mib']:7.1f} MiB"
                  f"   {r['result']}")
        s, n = results["stream-csv"], results["numpy-load"]
        print(f"stream-csv vs numpy-load: time x{s['wall_s'] / n['wall_s']:.2f}, "
              f"RSS above the interpreter {s['peak_rss_mib'] - base:.1f} vs "
              f"{n['peak_rss_mib'] - base:.1f} MiB")
        exact = results["scipy-exact"]["result"]["ks_max"]
        print(f"ks_max streamed {s['result']['ks_max']} vs exact {exact} "
              f"(gap {exact - s['result']['ks_max']:.4f})")


if __name__ == "__main__":
    main()
