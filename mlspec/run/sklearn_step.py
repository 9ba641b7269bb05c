"""Built-in scikit-learn training: a step with `estimator:` instead of a command.

mlspec validates the estimator, its params and the metric names against scikit-learn (only
when a spec uses `estimator:`, so other specs never import sklearn), then runs the step as a
subprocess, `python -m mlspec.run.sklearn_step CONFIG`: load the dataset (a CSV in the repo, or a
dataset bundled with scikit-learn), split, fit, write the model with joblib to the step's
first out, the metrics the design names to the step's metrics file, and to any further out
named `profile.json` the reference profile of the training rows (mlspec.monitor.profile: the
drift check of `mlspec monitor` compares production traffic with it). Seeds are fixed and
n_jobs=1 by default, so the run is reproducible.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec import DISTRIBUTION, SKLEARN_EXTRA, layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.fsutil import write_atomic
from mlspec.spec.step import Split

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec

CLASSIFICATION = {"accuracy", "balanced_accuracy", "f1", "f1_macro", "f1_micro", "f1_weighted",
                  "precision", "precision_macro", "recall", "recall_macro", "roc_auc", "log_loss"}
REGRESSION = {"r2", "rmse", "mse", "mae", "mape", "explained_variance"}
DEFAULTS = {"classifier": ["accuracy", "f1_macro"], "regressor": ["r2", "rmse", "mae"]}
MISSING = "the built-in estimator steps need scikit-learn"
INSTALL_HINT = f"pip install '{DISTRIBUTION}[{SKLEARN_EXTRA}]'"
PROFILE = "profile.json"  # an out of this name receives the training data's drift profile
SKLEARN_MODULES = frozenset({"sklearn", "numpy", "scipy", "joblib", "threadpoolctl"})


def sklearn_missing() -> str | None:
    """Why scikit-learn (with numpy, scipy, joblib) cannot be imported, or None when it can."""
    for module in ("sklearn.base", "joblib"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"{exc.name or module} is not installed"
    return None


def _load_class(dotted: str) -> type | str:
    """The estimator class, or why it cannot be used."""
    if not dotted.startswith("sklearn.") or dotted.count(".") < 2:
        return "expected a dotted scikit-learn class like sklearn.ensemble.RandomForestClassifier"
    module_name, _, cls_name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return f"no scikit-learn module '{module_name}'"
    cls = getattr(module, cls_name, None)
    from sklearn.base import BaseEstimator

    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        import difflib

        names = [n for n in dir(module) if isinstance(getattr(module, n), type)]
        close = difflib.get_close_matches(cls_name, names, n=1)
        hint = f" (did you mean '{module_name}.{close[0]}'?)" if close else ""
        return f"'{cls_name}' is not an estimator in {module_name}{hint}"
    return cls


def task_of(cls: type) -> str:
    from sklearn.base import is_classifier

    return "classifier" if is_classifier(cls()) else "regressor"


def metric_names(loaded: LoadedSpec, task: str) -> list[str]:
    design = loaded.spec.design
    known = CLASSIFICATION if task == "classifier" else REGRESSION
    names = [m for m in (design.metrics if design else {}) if m in known]
    return names or DEFAULTS[task]


def validate_builtin(loaded: LoadedSpec) -> None:
    """Raise located diagnostics for unknown estimators, params or metric names."""
    diags: list[Diagnostic] = []
    graph = loaded.graph
    missing = sklearn_missing()
    if missing is not None:
        raise MlspecError([
            loaded.diag((graph.stage[name], "steps", name, "estimator"),
                        f"{MISSING}: {INSTALL_HINT} ({missing})", "run.sklearn-missing",
                        "the extra installs scikit-learn, numpy, scipy and joblib")
            for name, step in graph.steps.items() if step.estimator is not None])
    has_script_metrics = any(s.metrics and s.estimator is None for s in graph.steps.values())
    tasks = set()
    for name, step in graph.steps.items():
        if step.estimator is None:
            continue
        key = (graph.stage[name], "steps", name)
        cls = _load_class(step.estimator)
        if isinstance(cls, str):
            diags.append(loaded.diag((*key, "estimator"), f"unknown estimator "
                                     f"'{step.estimator}': {cls}", "run.estimator"))
            continue
        tasks.add(task_of(cls))
        valid = set(cls().get_params())
        for p in step.params:
            if p not in valid:
                import difflib

                close = difflib.get_close_matches(p, sorted(valid), n=1)
                diags.append(loaded.diag(
                    (*key, "params", p), f"'{p}' is not a parameter of {cls.__name__}",
                    "run.estimator-param",
                    f"did you mean '{close[0]}'?" if close else
                    f"parameters: {', '.join(sorted(valid))}", at_key=True))
        for p in step.sweep or {}:
            if p not in valid:
                diags.append(loaded.diag((*key, "sweep", p), f"'{p}' is not a parameter of "
                                         f"{cls.__name__}", "run.estimator-param", at_key=True))
        if not step.outs:
            diags.append(loaded.diag(key, f"estimator step '{name}' needs an out for the model",
                                     "run.estimator-outs", "e.g. outs: [model/model.pkl]"))
        if not step.metrics:
            diags.append(loaded.diag(key, f"estimator step '{name}' needs a metrics file",
                                     "run.estimator-metrics", "e.g. metrics: metrics.json"))
    design = loaded.spec.design
    if tasks and design is not None and not has_script_metrics:
        known = set().union(*(CLASSIFICATION if t == "classifier" else REGRESSION
                              for t in tasks))
        for m in design.metrics:
            if m not in known:
                diags.append(loaded.diag(
                    ("design", "metrics", m), f"metric '{m}' is not one the built-in "
                    "training computes", "run.estimator-metric",
                    f"known: {', '.join(sorted(known))}", at_key=True))
    if diags:
        raise MlspecError(diags)


def validate_builtin_cached(loaded: LoadedSpec) -> None:
    """validate_builtin, skipped when this exact spec passed it with this scikit-learn.

    A no-op `mlspec run` of an estimator spec then does not pay for importing sklearn.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        sk = version("scikit-learn")
    except PackageNotFoundError:
        sk = "missing"
    stamp = f"{loaded.spec_hash} scikit-learn=={sk}\n"
    path = Path(loaded.root) / layout.ESTIMATORS_VALID
    try:
        if path.read_text(encoding="utf-8") == stamp:
            return
    except OSError:
        pass
    validate_builtin(loaded)

    path.parent.mkdir(exist_ok=True)
    write_atomic(path, stamp)


def builtin_config(loaded: LoadedSpec, name: str, params: dict[str, Any]) -> dict[str, Any]:
    step = loaded.graph.steps[name]
    cls = _load_class(step.estimator or "")
    assert not isinstance(cls, str)

    split = step.split or Split()
    config: dict[str, Any] = {
        "estimator": step.estimator, "params": params,
        "dataset": step.dataset.model_dump() if step.dataset else {},
        "split": split.model_dump(), "model": step.outs[0], "metrics_file": step.metrics,
        "metrics": metric_names(loaded, task_of(cls))}
    profiles = [o for o in step.outs[1:] if o.rsplit("/", 1)[-1] == PROFILE]
    if profiles:  # only then: the config is in the step's command, hence in its key
        config["profiles"] = profiles
    return config


# -- the subprocess -----------------------------------------------------------------------
def _load_data(ds: dict[str, Any], classifier: bool) -> tuple[Any, Any, list[str]]:
    import numpy as np

    if ds.get("sklearn"):
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{ds['sklearn']}")()
        names = [str(n) for n in getattr(bunch, "feature_names", [])]
        return bunch.data, bunch.target, names or [f"x{i}" for i in range(bunch.data.shape[1])]
    import csv

    with open(ds["path"], newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], [r for r in rows[1:] if r]
    if ds["target"] not in header:
        raise SystemExit(f"target column '{ds['target']}' is not in {ds['path']}")
    t = header.index(ds["target"])
    try:
        x = np.array([[float(v) for i, v in enumerate(r) if i != t] for r in body])
    except ValueError as exc:
        raise SystemExit(f"{ds['path']}: feature columns must be numeric ({exc})") from None
    y_raw = [r[t] for r in body]
    y = np.array(y_raw) if classifier else np.array([float(v) for v in y_raw])
    return x, y, [h.strip() for i, h in enumerate(header) if i != t]


def _score(name: str, model: Any, x: Any, y: Any) -> float:
    from sklearn import metrics as m

    pred = model.predict(x)
    binary = len(getattr(model, "classes_", [])) == 2
    avg = "binary" if binary else "macro"
    if name == "roc_auc":
        proba = model.predict_proba(x)
        return float(m.roc_auc_score(y, proba[:, 1]) if binary
                     else m.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    if name == "log_loss":
        return float(m.log_loss(y, model.predict_proba(x), labels=model.classes_))
    kw = {"pos_label": model.classes_[1]} if binary else {}
    fns: dict[str, Any] = {
        "accuracy": lambda: m.accuracy_score(y, pred),
        "balanced_accuracy": lambda: m.balanced_accuracy_score(y, pred),
        "f1": lambda: m.f1_score(y, pred, average=avg, **kw),
        "f1_macro": lambda: m.f1_score(y, pred, average="macro"),
        "f1_micro": lambda: m.f1_score(y, pred, average="micro"),
        "f1_weighted": lambda: m.f1_score(y, pred, average="weighted"),
        "precision": lambda: m.precision_score(y, pred, average=avg, zero_division=0, **kw),
        "precision_macro": lambda: m.precision_score(y, pred, average="macro", zero_division=0),
        "recall": lambda: m.recall_score(y, pred, average=avg, zero_division=0, **kw),
        "recall_macro": lambda: m.recall_score(y, pred, average="macro", zero_division=0),
        "r2": lambda: m.r2_score(y, pred),
        "mse": lambda: m.mean_squared_error(y, pred),
        "rmse": lambda: m.mean_squared_error(y, pred) ** 0.5,
        "mae": lambda: m.mean_absolute_error(y, pred),
        "mape": lambda: m.mean_absolute_percentage_error(y, pred),
        "explained_variance": lambda: m.explained_variance_score(y, pred),
    }
    return float(fns[name]())


def train(config: dict[str, Any]) -> dict[str, float]:
    import joblib
    from sklearn.base import is_classifier
    from sklearn.model_selection import train_test_split

    cls = _load_class(config["estimator"])
    assert not isinstance(cls, str)
    split = config["split"]
    params = dict(config["params"])
    defaults = cls().get_params()
    if "random_state" in defaults and "random_state" not in params:
        params["random_state"] = split["random_state"]
    if "n_jobs" in defaults and "n_jobs" not in params:
        params["n_jobs"] = 1
    model = cls(**params)
    classifier = is_classifier(model)
    x, y, names = _load_data(config["dataset"], classifier)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=split["test_size"], random_state=split["random_state"],
        stratify=y if classifier and split["stratify"] else None)
    model.fit(x_train, y_train)
    out = Path(config["model"])
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out)
    for rel in config.get("profiles", []):  # the drift check's reference: see monitor.profile
        from mlspec.monitor.profile import profile_of_array

        Path(rel).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(rel, profile_of_array(names, x_train).to_json())
    metrics = {name: round(_score(name, model, x_test, y_test), 6) for name in config["metrics"]}
    mpath = Path(config["metrics_file"])
    mpath.parent.mkdir(parents=True, exist_ok=True)
    mpath.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"trained {cls.__name__} on {len(y_train)} rows; {json.dumps(metrics)}")
    return metrics


def main(argv: list[str]) -> int:
    train(json.loads(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
