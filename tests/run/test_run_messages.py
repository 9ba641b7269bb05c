"""Issue 12 (items 4, 5, 8): the messages a newcomer meets after switching branches and
sweeping tell them what to run, and the advice works."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import git, mlspec
from run_helpers import TOY_FILES, TOY_SPEC, make_repo

THREE = """
version: 1
project: {name: three}
design:
  hypothesis: score is high
  metrics:
    score: {goal: maximize, primary: true}
model:
  steps:
    prep:
      command: python src/prep.py
      deps: [src/prep.py, src/input.txt]
      outs: [out/input.txt]
    make:
      command: python src/make.py
      deps: [src/make.py, out/input.txt]
      params: {factor: 2}
      sweep: {factor: [1, 3, 2]}
      outs: [out/made.txt]
    score:
      command: python src/score.py
      deps: [src/score.py, out/made.txt]
      metrics: out/metrics.json
"""


def _three(tmp_path: Path) -> Path:
    files = dict(TOY_FILES)
    files["src/prep.py"] = ("import pathlib\npathlib.Path('out/input.txt').write_text("
                            "pathlib.Path('src/input.txt').read_text())\n")
    files["src/make.py"] = files["src/make.py"].replace('"src/input.txt"', '"out/input.txt"')
    return make_repo(tmp_path / "r", THREE, files)


def test_stale_record_advice_works(tmp_path: Path) -> None:
    """A branch left `.mlspec/steps/score.lock` behind; back on main the step is up to date
    (same outs), `metrics` warns, and the `mlspec run --no-gates` it advises clears it."""
    repo = make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "lock", cwd=repo)
    git("checkout", "-qb", "exp", cwd=repo)
    with (repo / "src/score.py").open("a") as fh:
        fh.write("# a comment changes the key, not the metrics\n")
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    git("commit", "-qam", "exp", cwd=repo)
    git("checkout", "-q", "main", cwd=repo)
    m = mlspec("metrics", cwd=repo)
    assert "does not hold the latest run of score" in m.stderr, m.stderr
    assert "mlspec run --no-gates" in m.stderr
    r = mlspec("run", "--no-gates", cwd=repo)
    assert r.returncode == 0, r.stderr
    again = mlspec("metrics", cwd=repo)
    assert "does not hold the latest run" not in again.stderr, again.stderr
    assert git("status", "--porcelain", cwd=repo) == ""  # nothing to commit either


def test_after_checkout_status_and_release_say_what_to_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "lock", cwd=repo)
    git("checkout", "-qb", "exp", cwd=repo)
    (repo / "mlspec.yaml").write_text(TOY_SPEC.replace("factor: 2", "factor: 3").lstrip())
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    git("commit", "-qam", "exp", cwd=repo)
    git("checkout", "-q", "main", cwd=repo)  # git-ignored outs stay as exp left them
    st = mlspec("status", cwd=repo)
    assert "another branch" in st.stdout, st.stdout
    assert "run `mlspec run`" in st.stdout
    assert "mlspec.lock stays as it is" in st.stdout  # the lock matches: nothing to commit
    rel = mlspec("release", "1.0.0", cwd=repo)
    assert rel.returncode != 0
    assert "another branch" in rel.stdout + rel.stderr, rel.stdout + rel.stderr
    # the advice works
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    assert "everything is up to date" in mlspec("status", cwd=repo).stdout
    assert git("status", "--porcelain", cwd=repo) == ""


def test_status_after_an_input_change_says_run_then_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    (repo / "src/input.txt").write_text("4\n")
    st = mlspec("status", cwd=repo)
    assert "run `mlspec run`, then commit mlspec.lock" in st.stdout, st.stdout


def test_sweep_output_counts_each_step_once(tmp_path: Path) -> None:
    repo = _three(tmp_path)
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    r = mlspec("run", "--sweep", "--no-gates", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.count("prep: up to date, skipped") == 1, r.stderr
    summary = next(line for line in r.stdout.splitlines() if line.startswith("ran "))
    ran, skipped = map(int, re.match(r"ran (\d+), skipped (\d+)", summary).groups())  # type: ignore[union-attr]
    assert ran + skipped <= 3, summary
    assert "sweep variants" in summary
    header = next(line for line in r.stdout.splitlines() if line.startswith("params"))
    assert header.split() == ["params", "score", "result", "best"]
    j = json.loads(mlspec("run", "--sweep", "--no-gates", "--json", cwd=repo).stdout)
    assert len(j["ran"]) + len(j["skipped"]) <= 3 and len(set(j["skipped"])) == len(j["skipped"])


def test_sweep_progress_never_counts_past_its_total(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The `[k/N]` label of a terminal's status line, recorded in-process (a real run)."""
    from mlspec.run import progress as progress_mod
    from mlspec.run.runner import run_steps
    from mlspec.spec.loader import load_spec

    repo = _three(tmp_path)
    seen: list[tuple[int, int]] = []
    real_start = progress_mod.Progress.start

    def start(self: progress_mod.Progress, name: str, what: str) -> None:
        real_start(self, name, what)
        seen.append((self.index, self.total))

    monkeypatch.setattr(progress_mod.Progress, "start", start)
    monkeypatch.chdir(repo)
    out = run_steps(load_spec(repo / "mlspec.yaml"), [], sweep=True, gates=False)
    assert out.code == 0, out.text
    assert seen and all(i <= n for i, n in seen), seen
