"""End to end on the real iris example: train, commit, release, then a PR that changes a param."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import copy_example, git, mlspec
from gitops_helpers import env


@pytest.mark.slow
def test_iris_release_then_pull_request_report(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GITHUB_BASE_REF", "GITHUB_REF", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
                "CI_MERGE_REQUEST_DIFF_BASE_SHA", "CI_COMMIT_BRANCH"):
        monkeypatch.delenv(var, raising=False)
    repo = copy_example("iris", tmp_path / "iris")
    r = mlspec("run", cwd=repo, env=env())
    assert r.returncode == 0, r.stdout + r.stderr
    git("add", "-A", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "train the baseline", cwd=repo)
    r = mlspec("release", "1.0.0", cwd=repo, env=env())
    assert r.returncode == 0, r.stderr
    models = json.loads(mlspec("models", "--json", cwd=repo).stdout)
    assert [m["tag"] for m in models] == ["v1.0.0"]
    assert models[0]["primary_metric"] == "f1_macro" and models[0]["value"] >= 0.9

    git("checkout", "-q", "-b", "stumps", cwd=repo)
    spec = repo / "specs" / "model.yaml"
    spec.write_text(spec.read_text().replace("max_depth: 5", "max_depth: 1"))
    r = mlspec("run", "--no-gates", cwd=repo, env=env())
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(mlspec("metrics", "--format", "json", cwd=repo).stdout)
    assert data["base"]["commit"] == git("rev-parse", "main", cwd=repo)
    assert data["params"] == [{"step": "train", "name": "max_depth", "base": 5, "value": 1,
                               "added": False, "removed": False}]
    f1 = data["metrics"][0]
    assert f1["name"] == "f1_macro" and f1["delta"] == pytest.approx(f1["value"] - f1["base"])
    report = mlspec("report", cwd=repo).stdout
    assert report.startswith("<!-- mlspec-report -->\n## mlspec report: iris-classifier")
    assert "| train | `max_depth` | `5` | `1` |" in report
    assert "| prepare | `data/iris.csv` |" in report
    assert 's_prepare["prepare (data)"]' in report
