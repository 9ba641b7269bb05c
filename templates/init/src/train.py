"""Train a logistic regression on the prepared CSV.

`mlspec run` writes the step's params to params.json (and MLSPEC_PARAM_* variables); the
defaults below let the script also run by hand.
"""

import csv
import json
import pickle
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


def load(path: str) -> tuple[list[list[float]], list[int]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    return [[float(v) for v in r[:-1]] for r in rows], [int(r[-1]) for r in rows]


def split(path: str) -> tuple[list[list[float]], list[list[float]], list[int], list[int]]:
    """The same held-out split for training and evaluation."""
    x, y = load(path)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    return x_train, x_test, y_train, y_test


def main() -> None:
    params_file = Path("params.json")
    params = json.loads(params_file.read_text()) if params_file.exists() else {}
    x_train, _x_test, y_train, _y_test = split("data/dataset.csv")
    model = LogisticRegression(C=float(params.get("c", 1.0)),
                               max_iter=int(params.get("max_iter", 200)))
    model.fit(x_train, y_train)
    out = Path("model/model.pkl")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(model, protocol=5))
    print(f"trained {type(model).__name__} with {params}")


if __name__ == "__main__":
    main()
