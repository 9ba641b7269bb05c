"""Score the model on the held-out split and write metrics.json (the names design.metrics
declares, so the gates can check them)."""

import json
import pickle
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score
from train import split


def main() -> None:
    _x_train, x_test, _y_train, y_test = split("data/dataset.csv")
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
