"""Write the iris dataset (bundled with scikit-learn, nothing downloaded) as a CSV."""

import argparse
import csv
from pathlib import Path

from sklearn.datasets import load_iris

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    iris = load_iris()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*COLUMNS, "species"])
        for row, target in zip(iris.data, iris.target, strict=True):
            writer.writerow([f"{v:.1f}" for v in row] + [iris.target_names[target]])
    print(f"wrote {len(iris.data)} rows to {out}")


if __name__ == "__main__":
    main()
