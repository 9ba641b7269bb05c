"""Train a random forest on the prepared CSV; params come from params.json (mlspec run)."""

import csv
import json
import pickle
from pathlib import Path

from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def load(path: str) -> tuple[list[list[float]], list[str]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [[float(r[f]) for f in FEATURES] for r in rows], [r["species"] for r in rows]


def main() -> None:
    params = json.loads(Path("params.json").read_text())
    x, y = load("data/iris.csv")
    x_train, _x_test, y_train, _y_test = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y)
    model = RandomForestClassifier(
        n_estimators=int(params["n_estimators"]),
        max_depth=int(params["max_depth"]),
        random_state=int(params["random_state"]),
        n_jobs=1,
    )
    model.fit(x_train, y_train)
    out = Path("model/model.pkl")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(model, protocol=5))
    print(f"trained {type(model).__name__} with {params}")


if __name__ == "__main__":
    main()
