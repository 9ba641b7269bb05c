"""Production monitoring: compare live feature distributions with the training distribution.

The reference is the training data itself (bundled with scikit-learn, so the scheduled job needs
no artifact from an earlier pipeline). Live rows come from the CSV named by MLSPEC_MONITOR_INPUT
(e.g. exported request logs); without one, the reference is checked against itself so the job is
runnable anywhere. Exits 1 when a feature's mean shifts by more than half a standard deviation.
"""

import csv
import os
import statistics
import sys

from sklearn.datasets import load_iris

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def reference() -> dict[str, list[float]]:
    data = load_iris().data
    return {f: [float(row[i]) for row in data] for i, f in enumerate(FEATURES)}


def live(path: str) -> dict[str, list[float]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {f: [float(r[f]) for r in rows] for f in FEATURES}


def main() -> int:
    ref = reference()
    source = os.environ.get("MLSPEC_MONITOR_INPUT")
    now = live(source) if source else ref
    drifted = []
    for f in FEATURES:
        mu, sd = statistics.mean(ref[f]), statistics.stdev(ref[f])
        shift = abs(statistics.mean(now[f]) - mu) / sd
        print(f"{f}: mean shift {shift:.3f} sd")
        if shift > 0.5:
            drifted.append(f)
    if drifted:
        print(f"drift detected in: {', '.join(drifted)}", file=sys.stderr)
        return 1
    print("no drift")
    return 0


if __name__ == "__main__":
    sys.exit(main())
