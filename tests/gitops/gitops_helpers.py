"""Builders for the GitOps tests: a tiny real project, run by the real `mlspec run`, in real git
history.

The toy pipeline's scripts take milliseconds: prepare writes a CSV, train writes its params as
the "model", evaluate looks the metrics up by max_depth (so a test chooses better or worse
metrics by changing a param, as a data scientist would).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, git, init_repo, mlspec

SPEC = """\
version: 1
project:
  name: toy
  python: "3.11"
  requirements: requirements.txt
design:
  hypothesis: A small forest separates the toy classes with macro F1 >= 0.90
  metrics:
    f1_macro: {goal: maximize, threshold: 0.90, primary: true}
    accuracy: {goal: maximize, threshold: 0.85}
    log_loss: {goal: minimize}
data:
  steps:
    prepare:
      command: python src/prepare.py
      deps: [src/prepare.py]
      outs: [data/toy.csv]
      checks: {min_rows: 10, columns: {label: str}}
model:
  steps:
    train:
      command: python src/train.py
      deps: [src/train.py, data/toy.csv]
      params: {n_estimators: 100, max_depth: MAXDEPTH}
      outs: [model/model.json]
    evaluate:
      command: python src/evaluate.py
      deps: [src/evaluate.py, model/model.json, data/toy.csv]
      metrics: metrics.json
  gates:
    - f1_macro >= baseline - 0.01
    - log_loss <= baseline * 1.5
ci:
  default_branch: main
"""

PREPARE = """\
import os
os.makedirs("data", exist_ok=True)
rows = ["a,b,label"] + [f"{i},{i * 2},{'x' if i % 2 else 'y'}" for i in range(ROWS)]
open("data/toy.csv", "w").write("\\n".join(rows) + "\\n")
"""

TRAIN = """\
import json, os
params = json.load(open("params.json"))
os.makedirs("model", exist_ok=True)
open("model/model.json", "w").write(json.dumps(params, sort_keys=True) + "\\n")
"""

# Metrics by max_depth: 5 is the baseline, 3 is worse, 7 is better.
EVALUATE = """\
import json
depth = json.load(open("model/model.json"))["max_depth"]
table = {
    5: {"accuracy": 0.9667, "f1_macro": 0.9665, "log_loss": 0.12},
    3: {"accuracy": 0.9333, "f1_macro": 0.9331, "log_loss": 0.2},
    7: {"accuracy": 0.98, "f1_macro": 0.9801, "log_loss": 0.1},
    2: {"accuracy": 0.8, "f1_macro": 0.79, "log_loss": 0.5},
}
json.dump(table[depth], open("metrics.json", "w"), sort_keys=True)
"""


def env() -> dict[str, str]:
    """`python` in the steps' commands is the test venv's interpreter."""
    return {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def write_project(root: Path, max_depth: int, rows: int = 12) -> None:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "prepare.py").write_text(PREPARE.replace("ROWS", str(rows)))
    (root / "src" / "train.py").write_text(TRAIN)
    (root / "src" / "evaluate.py").write_text(EVALUATE)
    (root / "requirements.txt").write_text("scikit-learn\n")
    (root / ".gitignore").write_text("data/\nmodel/\nmetrics.json\nparams.json\n.mlspec/\n")
    (root / "mlspec.yaml").write_text(SPEC.replace("MAXDEPTH", str(max_depth)))


def set_depth(root: Path, max_depth: int) -> None:
    text = (root / "mlspec.yaml").read_text()
    import re

    (root / "mlspec.yaml").write_text(re.sub(r"max_depth: \d+", f"max_depth: {max_depth}", text))


def run(root: Path) -> None:
    r = mlspec("run", "--no-gates", cwd=root, env=env())
    assert r.returncode == 0, r.stdout + r.stderr


def commit(root: Path, message: str, date: str) -> str:
    git("add", "-A", cwd=root)
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, check=True, env=env)
    return git("rev-parse", "HEAD", cwd=root)


def build_history(path: Path) -> Path:
    """main: an initial commit, then a committed baseline (max_depth 5, run, lock committed);
    branch `deeper`: max_depth 5 -> 3, rerun and committed (a worse model). HEAD is left on
    `deeper`. Author, committer and dates are fixed, so the shas are the same on every run."""
    root = init_repo(path)
    write_project(root, 5)
    commit(root, "start the toy project", "2026-01-01T10:00:00Z")
    run(root)
    commit(root, "baseline: max_depth 5", "2026-01-01T11:00:00Z")
    git("checkout", "-q", "-b", "deeper", cwd=root)
    set_depth(root, 3)
    run(root)
    commit(root, "try max_depth 3", "2026-01-01T12:00:00Z")
    return root


def copy_history(template: Path, dest: Path) -> Path:
    """A copy of a built history (cheaper than rerunning it)."""
    shutil.copytree(template, dest, symlinks=True)
    return dest


_TEMPLATES: dict[str, Path] = {}


def template(factory: pytest.TempPathFactory) -> Path:
    """The history, built once per test session and copied by each test that changes it."""
    if "history" not in _TEMPLATES:
        _TEMPLATES["history"] = build_history(factory.mktemp("template") / "repo")
    return _TEMPLATES["history"]
