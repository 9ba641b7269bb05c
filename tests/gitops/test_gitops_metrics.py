"""`mlspec metrics`: a branch that changes a param and reruns, compared with main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git, mlspec
from gitops_helpers import copy_history, env, run, set_depth, template


@pytest.fixture
def repo(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_history(template(tmp_path_factory), tmp_path / "repo")


def metrics_json(repo: Path, *args: str) -> dict:
    r = mlspec("metrics", *args, "--format", "json", cwd=repo)
    assert r.returncode in (0, 1), r.stderr
    data = json.loads(r.stdout)
    # exit 1 exactly when a gate fails (issue 12.3), in every format
    assert r.returncode == (0 if data["passed"] else 1), (r.returncode, data["passed"])
    return data


def test_diff_main_shows_deltas_and_verdicts(repo: Path) -> None:
    data = metrics_json(repo, "--diff", "main")
    assert data["base"]["ref"] == "main"
    assert data["base"]["commit"] == git("rev-parse", "main", cwd=repo)
    rows = {m["name"]: m for m in data["metrics"]}
    assert list(rows) == ["f1_macro", "accuracy", "log_loss"]  # design order
    f1 = rows["f1_macro"]
    assert (f1["value"], f1["base"], f1["delta"]) == (0.9331, 0.9665, -0.0334)
    assert f1["primary"] and f1["goal"] == "maximize"
    assert f1["change"] == "worse" and f1["verdict"] == "fail"
    assert rows["accuracy"]["change"] == "worse" and rows["accuracy"]["verdict"] == "pass"
    # log_loss went *up*, which is worse for a minimized metric, and fails `<= baseline * 1.5`
    assert rows["log_loss"]["delta"] == 0.08 and rows["log_loss"]["change"] == "worse"
    gates = {g["gate"]: g for g in data["gates"]}
    assert gates["f1_macro >= baseline - 0.01"]["threshold"] == 0.9565
    assert gates["f1_macro >= baseline - 0.01"]["verdict"] == "fail"
    assert gates["log_loss <= baseline * 1.5"]["threshold"] == 0.18
    assert gates["f1_macro >= 0.9"]["verdict"] == "pass"
    assert data["passed"] is False
    assert data["params"] == [{"step": "train", "name": "max_depth", "base": 5, "value": 3,
                               "added": False, "removed": False}]


def test_better_change_passes(repo: Path) -> None:
    set_depth(repo, 7)
    run(repo)
    data = metrics_json(repo, "--diff", "main")
    rows = {m["name"]: m for m in data["metrics"]}
    assert rows["f1_macro"]["change"] == "better" and rows["f1_macro"]["verdict"] == "pass"
    assert rows["log_loss"]["change"] == "better"  # went down: better when minimized
    assert data["passed"] is True
    assert data["params"][0]["value"] == 7


def test_default_and_auto_base_is_the_merge_base(repo: Path) -> None:
    fork = git("rev-parse", "main", cwd=repo)
    assert metrics_json(repo)["base"]["commit"] == fork
    assert metrics_json(repo, "--diff", "auto")["base"]["commit"] == fork


def test_table_and_markdown(repo: Path) -> None:
    r = mlspec("metrics", "--diff", "main", cwd=repo)
    assert r.returncode == 1, r.stderr  # the worse model fails its relative gates
    assert r.stderr == ("gate failed: f1_macro >= baseline - 0.01\n"
                        "gate failed: log_loss <= baseline * 1.5\n")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("base: main (")
    f1 = next(line for line in lines if line.startswith("f1_macro"))
    assert f1.split() == ["f1_macro", "*", "0.9331", "0.9665", "-0.0334", "(-3.5%)", "↓",
                          "WORSE", "maximize", "FAIL"]
    assert "  train.max_depth: 5 -> 3" in lines
    md = mlspec("metrics", "--diff", "main", "--format", "markdown", cwd=repo).stdout
    assert ("| **f1_macro** (primary) | 0.9331 | 0.9665 | 🔴 ↓ -0.0334 (-3.5%) | ↑ maximize "
            "| ❌ fail |") in md
    assert "| log_loss | 0.2000 | 0.1200 | 🔴 ↑ +0.0800 (+66.7%) | ↓ minimize | ❌ fail |" in md
    assert "| train | `max_depth` | `5` | `3` |" in md


def test_without_git_shows_the_lock_alone(repo: Path, tmp_path: Path) -> None:
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git"))
    data = metrics_json(plain)
    assert data["base"]["ref"] is None
    assert [m["value"] for m in data["metrics"]] == [0.9331, 0.9333, 0.2]
    assert all(m["base"] is None for m in data["metrics"])
    # relative gates are skipped without a baseline, never passed
    assert {g["gate"]: g["verdict"] for g in data["gates"]}["f1_macro >= baseline - 0.01"] \
        == "skipped"


def test_explicit_bad_ref_is_a_usage_error(repo: Path) -> None:
    r = mlspec("metrics", "--diff", "origin/nope", cwd=repo)
    assert r.returncode == 2
    assert "unknown git ref 'origin/nope'" in r.stderr and "git fetch" in r.stderr
    assert "Traceback" not in r.stderr


def test_no_lock_is_a_clear_error(repo: Path) -> None:
    (repo / "mlspec.lock").unlink()
    r = mlspec("metrics", cwd=repo)
    assert r.returncode == 2
    assert "no mlspec.lock" in r.stderr and "mlspec run" in r.stderr


def test_base_without_lock(repo: Path) -> None:
    data = metrics_json(repo, "--diff", "main~1")  # the first commit: no lock yet
    assert data["base"]["has_lock"] is False
    assert data["metrics"][0]["change"] == "new"


def test_corrupt_lock_at_the_base_is_a_clear_error(repo: Path) -> None:
    git("checkout", "-q", "-b", "broken", "main", cwd=repo)
    (repo / "mlspec.lock").write_text("steps: [1, 2]\n")
    git("commit", "-q", "-am", "break the lock", cwd=repo)
    git("checkout", "-q", "deeper", cwd=repo)
    r = mlspec("metrics", "--diff", "broken", cwd=repo)
    assert r.returncode == 2
    assert "broken:mlspec.lock" in r.stderr and "corrupt lock" in r.stderr
    assert "Traceback" not in r.stderr


def test_gate_verdicts_agree_with_the_runner(repo: Path) -> None:
    """`mlspec metrics` and `mlspec run` (mlspec.gitops.gates) judge every gate the same way."""
    from mlspec.gitops.gates import evaluate
    from mlspec.run.lock import read_lock
    from mlspec.spec.loader import load_spec

    loaded = load_spec(repo / "mlspec.yaml")
    lock = read_lock(repo)
    assert lock is not None
    runner, _ = evaluate(loaded, lock.metrics(), "main")
    ours = metrics_json(repo, "--diff", "main")["gates"]
    assert [(g.gate, g.verdict.lower(), g.threshold) for g in runner] == \
        [(g["gate"], g["verdict"], g["threshold"]) for g in ours]


def test_says_how_the_base_was_chosen(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert metrics_json(repo)["base"]["how"] == "where HEAD branched from main"
    assert mlspec("metrics", cwd=repo).stdout.startswith(
        f"base: {git('rev-parse', '--short=7', 'main', cwd=repo)}, where HEAD branched from main")
    assert metrics_json(repo, "--diff", "main")["base"]["how"] == "given"
    git("checkout", "-q", "main", cwd=repo)
    assert metrics_json(repo)["base"]["how"] == "the previous commit on main"


def _gate_on_precision(repo: Path) -> None:
    """Declare a metric (and gate it) that src/evaluate.py never writes."""
    spec = repo / "mlspec.yaml"
    text = spec.read_text().replace(
        "    log_loss: {goal: minimize}\n",
        "    log_loss: {goal: minimize}\n    precision: {goal: maximize, threshold: 0.5}\n")
    spec.write_text(text)


def test_a_metric_the_script_does_not_write(repo: Path) -> None:
    """issue 12.3: the gate says which file lacks the key and what it has; `mlspec metrics`
    exits 1 and shows the metric as missing."""
    git("checkout", "-q", "main", cwd=repo)
    _gate_on_precision(repo)
    want = ("metrics.json written by step 'evaluate' has no key 'precision' "
            "(it has: accuracy, f1_macro, log_loss)")
    r = mlspec("run", cwd=repo, env=env())
    assert r.returncode == 1
    assert f"missing metric 'precision': {want}" in r.stdout
    r = mlspec("metrics", cwd=repo)
    assert r.returncode == 1
    assert f"gate failed: precision >= 0.5 — {want}\n" in r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("precision"))
    assert row.split() == ["precision", "missing", "—", "—", "maximize", "FAIL"]
    md = mlspec("metrics", "--format", "markdown", cwd=repo)
    assert "| precision | missing |" in md.stdout
    data = metrics_json(repo)
    gate = next(g for g in data["gates"] if g["metric"] == "precision")
    assert (gate["verdict"], gate["note"]) == ("fail", want)


def test_a_misspelt_metric_gets_a_suggestion(repo: Path) -> None:
    from mlspec.gitops.metricsdiff import missing_metric
    from mlspec.run.lock import read_lock
    from mlspec.spec.loader import load_spec

    loaded = load_spec(repo / "mlspec.yaml")
    note = missing_metric(loaded, read_lock(repo), "f1-macro")
    assert note.endswith("— did you mean 'f1_macro'?"), note
    assert "has not run yet" in missing_metric(loaded, None, "f1-macro")
