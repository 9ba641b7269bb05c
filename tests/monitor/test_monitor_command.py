"""`mlspec monitor` and `mlspec profile` as a user runs them: exit codes, located diagnostics,
the metrics file, gates (baseline from the deployed release), the graph, the built-in trainer's
profile."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import git, init_repo, mlspec

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")

SPEC = """\
version: 1
project: {name: drift-demo}
design:
  hypothesis: a linear model is enough
  metrics:
    accuracy: {goal: maximize, primary: true}
model:
  steps:
    train:
      estimator: sklearn.linear_model.LogisticRegression
      params: {max_iter: 500}
      dataset: {path: data/train.csv, target: label}
      outs: [model/model.joblib, model/profile.json]
      metrics: metrics.json
inference:
  image: {name: ghcr.io/acme/drift}
  monitor:
    schedule: "0 6 * * *"
MONITOR
"""
DRIFT = """\
    drift: {reference: model/profile.json, live: logs/requests.jsonl}
    metrics: monitor/metrics.json
    gates: ["psi_max <= 0.2", "ks_max <= 0.1"]
"""


def _repo(tmp_path: Path, monitor: str = DRIFT) -> Path:
    repo = init_repo(tmp_path / "r")
    (repo / "mlspec.yaml").write_text(SPEC.replace("MONITOR\n", monitor))
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (600, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    (repo / "data").mkdir()
    with (repo / "data" / "train.csv").open("w") as fh:
        fh.write("f1,f2,label\n")
        fh.writelines(f"{a},{b},{c}\n" for (a, b), c in zip(x, y, strict=True))
    return repo


def _log(repo: Path, shift: float, n: int = 2000) -> None:
    rng = np.random.default_rng(1)
    (repo / "logs").mkdir(exist_ok=True)
    with (repo / "logs" / "requests.jsonl").open("w") as fh:
        for a, b in rng.normal(0, 1, (n, 2)):
            fh.write(json.dumps({"inputs": {"f1": a + shift, "f2": b}, "prediction": 1}) + "\n")


def test_trained_profile_then_gates_pass_without_shift_and_fail_with_one(tmp_path: Path
                                                                         ) -> None:
    repo = _repo(tmp_path)
    r = mlspec("run", "--no-gates", cwd=repo)
    assert r.returncode == 0, r.stderr
    prof = json.loads((repo / "model" / "profile.json").read_text())
    assert list(prof["features"]) == ["f1", "f2"]  # the label is not a feature
    lock = (repo / "mlspec.lock").read_text()
    assert "model/profile.json" in lock  # an out: tracked by the lock
    _log(repo, 0.0)
    ok = mlspec("monitor", "--json", cwd=repo)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = json.loads(ok.stdout)
    assert data["metrics"]["n_live"] == 2000
    assert [g["verdict"] for g in data["gates"]] == ["pass", "pass"]
    written = json.loads((repo / "monitor" / "metrics.json").read_text())
    assert written == data["metrics"]
    _log(repo, 1.0)
    bad = mlspec("monitor", cwd=repo)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL" in bad.stdout and "psi_max <= 0.2" in bad.stderr
    assert "psi_f1" in bad.stdout and "Traceback" not in bad.stderr


def test_bad_inputs_exit_2_located_at_the_spec(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    r = mlspec("monitor", cwd=repo)  # no profile yet
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert re.search(r"mlspec\.yaml:\d+:\d+: the reference profile 'model/profile.json' does "
                     r"not exist", r.stderr), r.stderr
    assert "it is an out of step 'train'" in r.stderr and "mlspec pull train" in r.stderr
    mlspec("profile", "data/train.csv", "--exclude", "label", "-o", "model/profile.json",
           cwd=repo, check=True)
    r = mlspec("monitor", cwd=repo)  # no live sample
    assert r.returncode == 2 and re.search(r"mlspec\.yaml:\d+:\d+: 'logs/requests.jsonl' does "
                                           "not exist", r.stderr), r.stderr


def test_spec_errors_are_located(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "    gates: [\"psi_max <=\"]\n")
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 2
    assert "mlspec.yaml:19:13: bad gate 'psi_max <='" in r.stderr, r.stderr
    repo = _repo(tmp_path / "b", "    metrics: m.json\n")
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 2
    assert "mlspec.yaml:18:5: a monitor needs a `command`, a `drift` check" in r.stderr, r.stderr
    repo = _repo(tmp_path / "c", "    command: echo hi\n    gates: [\"x <= 1\"]\n")
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 2
    assert "mlspec.yaml:18:5: `drift` and `gates` need a `metrics` file" in r.stderr, r.stderr


def test_custom_command_metrics_and_the_release_baseline(tmp_path: Path) -> None:
    monitor = ("    command: python live_accuracy.py\n"
               "    metrics: monitor/metrics.json\n"
               "    gates: [\"accuracy >= baseline - 0.05\"]\n")
    repo = _repo(tmp_path, monitor)
    (repo / "monitor").mkdir()
    (repo / "live_accuracy.py").write_text(
        "import json\njson.dump({'accuracy': 0.5}, open('monitor/metrics.json', 'w'))\n")
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "trained", cwd=repo)
    git("tag", "-a", "v1.0.0", "-m", "release 1.0.0", cwd=repo)
    r = mlspec("monitor", "--json", cwd=repo)
    assert r.returncode == 1, r.stdout + r.stderr  # 0.5 is far below the release's accuracy
    gate = json.loads(r.stdout)["gates"][0]
    assert gate["baseline"] > 0.9 and gate["verdict"] == "fail"
    assert json.loads(r.stdout)["baseline_ref"] == "v1.0.0"


def test_a_stale_metrics_file_is_not_judged_again(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "    command: echo measuring nothing\n    metrics: m.json\n"
                           "    gates: [\"accuracy >= 0.5\"]\n")
    (repo / "m.json").write_text('{"accuracy": 0.9}')  # an earlier run's
    r = mlspec("monitor", cwd=repo)
    assert r.returncode == 1 and "accuracy >= 0.5  missing" in r.stdout, r.stdout + r.stderr


def test_a_command_only_monitor_still_works(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "    command: echo measuring\n")
    r = mlspec("monitor", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "measuring" in r.stderr and "no metrics" in r.stdout
    repo2 = _repo(tmp_path / "b", "    command: exit 3\n")
    r = mlspec("monitor", cwd=repo2)
    assert r.returncode == 1 and "exited with status 3" in r.stderr


def test_graph_shows_the_monitor_after_the_step_that_writes_its_reference(tmp_path: Path
                                                                          ) -> None:
    repo = _repo(tmp_path)
    r = mlspec("graph", cwd=repo)
    assert r.stdout.splitlines() == ["train [model]", "inference.monitor [inference] <- train"]
    mer = mlspec("graph", "--format", "mermaid", cwd=repo).stdout
    assert "  s_train --> monitor" in mer


def test_drift_needs_the_sklearn_extra_in_ci(tmp_path: Path) -> None:
    from mlspec import spec_extras
    from mlspec.spec.loader import load_spec

    repo = _repo(tmp_path)
    text = (repo / "mlspec.yaml").read_text()
    (repo / "mlspec.yaml").write_text(text.replace(
        "      estimator: sklearn.linear_model.LogisticRegression\n"
        "      params: {max_iter: 500}\n"
        "      dataset: {path: data/train.csv, target: label}\n",
        "      command: python train.py\n"))
    assert spec_extras(load_spec(repo / "mlspec.yaml").spec) == ("sklearn",)


def test_profile_command(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    r = mlspec("profile", "data/train.csv", "--feature", "f1", "-o", "p/f1.json", "--json",
               cwd=repo)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["features"] == ["f1"]
    first = (repo / "p" / "f1.json").read_bytes()
    mlspec("profile", "data/train.csv", "--feature", "f1", "-o", "p/f1.json", cwd=repo)
    assert (repo / "p" / "f1.json").read_bytes() == first
    r = mlspec("profile", "data/nope.csv", "-o", "p.json", cwd=repo)
    assert r.returncode == 2 and "data/nope.csv: 'data/nope.csv' does not exist" in r.stderr
