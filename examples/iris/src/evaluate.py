"""Evaluate the trained model on the held-out split and write metrics.json."""

import json
import pickle
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from train import load


def main() -> None:
    x, y = load("data/iris.csv")
    _x_train, x_test, _y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y)
    model = pickle.loads(Path("model/model.pkl").read_bytes())
    pred = model.predict(x_test)
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, pred)), 6),
        "f1_macro": round(float(f1_score(y_test, pred, average="macro")), 6),
    }
    Path("metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
