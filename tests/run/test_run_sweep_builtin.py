"""Sweeps (local grid and the CI fan-out's pick-best), built-in scikit-learn training, hashing."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import mlspec
from run_helpers import TOY_FILES, TOY_SPEC, make_repo

from mlspec.run.hashing import Hasher
from mlspec.run.lock import Lock

SWEPT = TOY_SPEC.replace("params: {factor: 2}",
                         "params: {factor: 2}\n      sweep: {factor: [1, 3, 2]}")


def _lock(repo: Path) -> Lock:
    return Lock.parse((repo / "mlspec.lock").read_text())


def test_sweep_runs_the_grid_and_records_the_best(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", SWEPT, TOY_FILES)
    r = mlspec("run", "--sweep", "--no-gates", "--json", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["sweeps"]["make"]["best"] == {"factor": 3}
    lock = _lock(repo)
    sw = lock.sweeps["make"]
    assert sw.metric == "score" and sw.best == {"factor": 3}
    assert [v["params"]["factor"] for v in sw.variants] == [1, 3, 2]
    assert [v["metrics"]["score"] for v in sw.variants] == [0.3, 0.9, 0.6]
    # afterwards the workspace and the steps' entries are the spec's params again
    assert lock.steps["make"].params == {"factor": 2}
    assert lock.steps["score"].metrics == {"score": 0.6}
    assert (repo / "out/made.txt").read_text() == "6\n"
    # a second sweep reuses every recorded variant and reruns nothing
    again = mlspec("run", "--sweep", "--no-gates", "--json", cwd=repo)
    d2 = json.loads(again.stdout)
    assert [v["cached"] for v in d2["sweeps"]["make"]["variants"]] == [True, True, True]
    assert d2["ran"] == []


def test_sweep_fan_out_then_pick_best_from_variant_records(tmp_path: Path) -> None:
    """CI: each matrix job runs one --set; the pick-best job collects their records."""
    import shutil

    repo = make_repo(tmp_path / "r", SWEPT, TOY_FILES)
    records = tmp_path / "artifacts"
    for value in (1, 3, 2):
        job = tmp_path / f"job{value}"
        shutil.copytree(repo, job)
        r = mlspec("run", "--no-gates", "--set", f"factor={value}", cwd=job)
        assert r.returncode == 0, r.stdout + r.stderr
        shutil.copytree(job / ".mlspec/sweeps", records, dirs_exist_ok=True)
    shutil.copytree(records, repo / ".mlspec/sweeps")
    pick = mlspec("run", "make", "--sweep", "--no-gates", "--json", cwd=repo)
    assert pick.returncode == 0, pick.stdout + pick.stderr
    sweep = json.loads(pick.stdout)["sweeps"]["make"]
    assert sweep["best"] == {"factor": 3}
    assert all(v["cached"] for v in sweep["variants"])  # no variant was retrained


def test_builtin_estimator_trains_and_evaluates(tmp_path: Path) -> None:
    spec = """
        version: 1
        project: {name: builtin}
        design:
          hypothesis: a linear model separates iris
          metrics:
            accuracy: {goal: maximize, threshold: 0.8, primary: true}
            f1_macro: {goal: maximize}
            roc_auc: {goal: maximize}
        model:
          steps:
            train:
              estimator: sklearn.linear_model.LogisticRegression
              dataset: {sklearn: iris}
              params: {tol: 0.001, max_iter: 500}
              split: {test_size: 0.3, random_state: 0}
              outs: [model/model.joblib]
              metrics: metrics.json
    """
    repo = make_repo(tmp_path / "r", spec)
    r = mlspec("run", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    metrics = json.loads((repo / "metrics.json").read_text())
    assert set(metrics) == {"accuracy", "f1_macro", "roc_auc"}
    assert metrics["accuracy"] > 0.8
    import joblib

    model = joblib.load(repo / "model/model.joblib")
    assert type(model).__name__ == "LogisticRegression" and model.max_iter == 500
    assert _lock(repo).steps["train"].command == \
        "mlspec estimator sklearn.linear_model.LogisticRegression"
    noop = mlspec("run", cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert noop.stdout.startswith("ran 0, skipped 1")
    imported = {line.rsplit("|", 1)[-1].strip() for line in noop.stderr.splitlines()}
    assert "sklearn" not in imported  # validated once per spec: a no-op stays lean
    assert "mlspec.run.sklearn_step" in imported  # (the check that it is the real import list)
    assert mlspec("run", "--verify", cwd=repo).returncode == 0

    bad = spec.replace("LogisticRegression", "LogisticRegresion")
    repo2 = make_repo(tmp_path / "bad", bad)
    r = mlspec("run", cwd=repo2)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "mlspec.yaml:12:18:" in r.stderr and "did you mean " \
        "'sklearn.linear_model.LogisticRegression'" in r.stderr
    repo3 = make_repo(tmp_path / "bad3", spec.replace("max_iter: 500", "max_iters: 500"))
    r = mlspec("run", cwd=repo3)
    assert r.returncode == 2
    assert "'max_iters' is not a parameter of LogisticRegression" in r.stderr
    assert "did you mean 'max_iter'" in r.stderr


def test_builtin_metric_names_are_checked(tmp_path: Path) -> None:
    spec = """
        version: 1
        project: {name: builtin}
        design:
          hypothesis: h
          metrics:
            accurracy: {goal: maximize}
        model:
          steps:
            train:
              estimator: sklearn.tree.DecisionTreeRegressor
              dataset: {path: data.csv, target: y}
              outs: [model.joblib]
              metrics: metrics.json
    """
    repo = make_repo(tmp_path / "r", spec, {"data.csv": "x,y\n" + "".join(
        f"{i},{2 * i}\n" for i in range(20))})
    r = mlspec("run", cwd=repo)
    assert r.returncode == 2
    assert "mlspec.yaml:6:" in r.stderr
    assert "metric 'accurracy' is not one the built-in training computes" in r.stderr
    v = mlspec("validate", cwd=repo)  # `mlspec validate` checks estimator specs too
    assert v.returncode == 2 and "accurracy" in v.stderr


def test_noop_hashing_reads_no_data(tmp_path: Path) -> None:
    import os
    import time

    data = tmp_path / "data"
    data.mkdir()
    old = time.time() - 60
    for i in range(50):
        (data / f"f{i:03}.txt").write_text(str(i))
        os.utime(data / f"f{i:03}.txt", (old, old))
    h = Hasher(tmp_path)
    first = h.hash_path("data")
    assert h.reads == 50
    h.save()
    h2 = Hasher(tmp_path)
    assert h2.hash_path("data") == first and h2.reads == 0  # stat only
    (data / "f007.txt").write_text("changed")
    h3 = Hasher(tmp_path)
    assert h3.hash_path("data") != first and h3.reads == 1
    assert h3.hash_path("missing") is None
    h3.save()
    # a file written just now is hashed but not cached (its mtime may not move on the
    # next write), so the next look reads it again
    h4 = Hasher(tmp_path)
    h4.hash_path("data")
    assert h4.reads == 1


def test_builtin_estimator_takes_scikit_learn_param_names(tmp_path: Path) -> None:
    """scikit-learn spells some params in capitals (`C`); they reach the estimator as written."""
    spec = """
        version: 1
        project: {name: builtin}
        design:
          hypothesis: a regularised linear model is enough
          metrics:
            accuracy: {goal: maximize, threshold: 0.8, primary: true}
        model:
          steps:
            train:
              estimator: sklearn.linear_model.LogisticRegression
              dataset: {sklearn: iris}
              params: {C: 0.5, max_iter: 500}
              outs: [model.joblib]
              metrics: metrics.json
    """
    repo = make_repo(tmp_path / "r", spec)
    r = mlspec("run", cwd=repo)
    assert r.returncode == 0, r.stderr
    lock = Lock.parse((repo / "mlspec.lock").read_text())
    assert lock.steps["train"].params == {"C": 0.5, "max_iter": 500}


def test_params_differing_only_in_case_are_rejected(tmp_path: Path) -> None:
    spec = """
        version: 1
        project: {name: clash}
        model:
          steps:
            train:
              command: python -c pass
              params: {c: 1, C: 2}
    """
    repo = make_repo(tmp_path / "r", spec)
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 2
    assert r.stderr.startswith(
        "mlspec.yaml:7:15: params 'c' and 'C' both become MLSPEC_PARAM_C [spec.param-clash]")
