"""issue 12.6: a release is named by its version wherever a ref is taken (`release 0.1.0`
creates v0.1.0; `lineage 0.1.0`, `metrics --diff 0.1.0`, `report --base 0.1.0` find it), and a
bare `metrics --diff` compares with the automatic base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git, mlspec
from gitops_helpers import commit, copy_history, env, run, set_depth, template


@pytest.fixture
def released(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main with release 0.1.0 (max_depth 5), then a better model committed after it."""
    root = copy_history(template(tmp_path_factory), tmp_path / "repo")
    git("checkout", "-q", "main", cwd=root)
    run(root)
    r = mlspec("release", "0.1.0", cwd=root, env=env())
    assert r.returncode == 0, r.stdout + r.stderr
    set_depth(root, 7)
    run(root)
    commit(root, "max_depth 7", "2026-01-02T10:00:00Z")
    return root


def test_lineage_takes_the_version(released: Path) -> None:
    by_tag = mlspec("lineage", "v0.1.0", "--json", cwd=released)
    by_version = mlspec("lineage", "0.1.0", "--json", cwd=released)
    assert by_version.returncode == 0, by_version.stderr
    assert json.loads(by_version.stdout) == json.loads(by_tag.stdout)
    assert json.loads(by_version.stdout)["ref"] == "v0.1.0"
    card = mlspec("lineage", "0.1.0", "--model-card", cwd=released)
    assert card.stdout.startswith("# Model card: toy 0.1.0"), card.stdout


def test_an_unknown_version_says_no_release(released: Path) -> None:
    r = mlspec("lineage", "9.9.9", cwd=released)
    assert r.returncode == 2
    assert "no release 9.9.9: no tag v9.9.9" in r.stderr
    assert "mlspec models" in r.stderr


def test_metrics_diff_and_report_base_take_the_version(released: Path) -> None:
    r = mlspec("metrics", "--diff", "0.1.0", "--format", "json", cwd=released)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["base"]["ref"] == "v0.1.0"
    f1 = next(m for m in data["metrics"] if m["name"] == "f1_macro")
    assert (f1["base"], f1["value"], f1["change"]) == (0.9665, 0.9801, "better")
    r = mlspec("report", "--base", "0.1.0", cwd=released)
    assert r.returncode == 0, r.stderr
    assert "v0.1.0" in r.stdout


def test_bare_diff_means_the_automatic_base(released: Path) -> None:
    """On main, the automatic base is the previous commit: the 0.1.0 release."""
    r = mlspec("metrics", "--diff", cwd=released)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("base: ") and "the previous commit on main" in first, first
    r = mlspec("metrics", "--diff", "--format", "json", cwd=released)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["base"]["ref"] == git("rev-parse", "v0.1.0^{commit}",
                                                      cwd=released)
