"""Write a synthetic two-class dataset as a CSV (replace with your own data source)."""

import argparse
import csv
from pathlib import Path

from sklearn.datasets import make_classification


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--rows", type=int, default=600)
    args = parser.parse_args()
    x, y = make_classification(n_samples=args.rows, n_features=6, n_informative=4,
                               n_redundant=0, n_clusters_per_class=1, flip_y=0.05,
                               random_state=0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*(f"x{i}" for i in range(x.shape[1])), "label"])
        for row, label in zip(x, y, strict=True):
            writer.writerow([f"{v:.6f}" for v in row] + [int(label)])
    print(f"wrote {len(y)} rows to {out}")


if __name__ == "__main__":
    main()
