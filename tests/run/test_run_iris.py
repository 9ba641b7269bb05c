"""The iris example end to end: a real `mlspec run`, skipping, targeted reruns, status, verify."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import EXAMPLES, copy_example, mlspec

from mlspec.run.lock import Lock


def _lock(repo: Path) -> Lock:
    return Lock.parse((repo / "mlspec.lock").read_text())


def test_iris_run_skip_rerun_status_verify(tmp_path: Path) -> None:
    repo = copy_example("iris", tmp_path / "iris")
    committed = (EXAMPLES / "iris" / "mlspec.lock").read_text()

    first = mlspec("run", "--no-gates", cwd=repo)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "ran 3, skipped 0 (up to date); mlspec.lock unchanged (the rerun reproduced it)" in (
        first.stdout)
    for step in ("prepare", "train", "evaluate"):
        assert f"▶ {step}:" in first.stderr
    assert "prepare | wrote 150 rows" in first.stderr  # step output, prefixed
    # the example is deterministic: the committed lock is reproduced byte for byte
    assert (repo / "mlspec.lock").read_text() == committed, (
        "examples/iris/mlspec.lock is not reproduced: if scikit-learn/numpy changed, "
        "regenerate it with `cd examples/iris && mlspec run` and commit it")
    assert json.loads((repo / "params.json").read_text()) == {}  # the last step's params

    again = mlspec("run", "--no-gates", cwd=repo)
    assert again.returncode == 0
    assert "ran 0, skipped 3" in again.stdout

    status = mlspec("status", cwd=repo)
    assert status.returncode == 0 and "everything is up to date" in status.stdout

    # touch one dep's content: only that step (and what it feeds) is stale and reruns
    with (repo / "src/evaluate.py").open("a") as fh:
        fh.write("# a comment changes the hash\n")
    status = mlspec("status", "--json", cwd=repo)
    assert status.returncode == 0
    data = json.loads(status.stdout)
    assert data["stale"] == ["evaluate"]
    assert data["steps"]["evaluate"]["reasons"] == ["dep src/evaluate.py changed"]
    rerun = mlspec("run", "--no-gates", cwd=repo)
    assert "ran 1, skipped 2" in rerun.stdout, rerun.stdout
    assert "▶ evaluate" in rerun.stderr and "▶ train" not in rerun.stderr

    # a --set override is recorded; status then names the param, old → new
    s = mlspec("run", "train", "--no-gates", "--set", "n_estimators=20", cwd=repo)
    assert s.returncode == 0, s.stdout + s.stderr
    assert "ran 1, skipped 1" in s.stdout
    assert _lock(repo).steps["train"].params["n_estimators"] == 20
    status = mlspec("status", cwd=repo)
    assert "param n_estimators: 20 → 100" in status.stdout
    assert "upstream step 'train' is stale" in status.stdout

    # back to the spec's params, then --verify reruns all and agrees with the lock
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    before = (repo / "mlspec.lock").read_bytes()
    verify = mlspec("run", "--verify", "--no-gates", cwd=repo)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "verify: 3 step(s) rerun; outs and metrics match" in verify.stdout
    assert (repo / "mlspec.lock").read_bytes() == before

    # the environment is part of every key
    with (repo / "requirements.txt").open("a") as fh:
        fh.write("numpy>=1.26\n")
    data = json.loads(mlspec("status", "--json", cwd=repo).stdout)
    assert data["stale"] == ["prepare", "train", "evaluate"]
    assert "environment: the requirements file changed" in data["steps"]["train"]["reasons"]


def test_iris_gates_pass_and_skip_without_baseline(iris_repo: Path) -> None:
    r = mlspec("run", cwd=iris_repo)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    row = next(x for x in lines if x.startswith("f1_macro >= baseline - 0.01"))
    assert row.split()[-1] == "skipped"  # the first commit has no baseline
    assert next(x for x in lines if x.startswith("accuracy >= 0.85")).split()[-1] == "pass"
