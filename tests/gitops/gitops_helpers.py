"""Builders for the GitOps tests: a tiny spec, lock files written directly, real git history.

Running real training would be slow and is the runner's area; these tests write mlspec.lock in
the runner's format and commit it, exactly as `mlspec run` + `git commit` would leave it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from conftest import git, init_repo

from mlspec.lock import Lock, StepLock

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
      outs: [model/model.pkl]
    evaluate:
      command: python src/evaluate.py
      deps: [src/evaluate.py, model/model.pkl, data/toy.csv]
      metrics: metrics.json
  gates:
    - f1_macro >= 0.90
    - f1_macro >= baseline - 0.01
    - log_loss <= baseline * 1.5
ci:
  default_branch: main
"""


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def lock_text(max_depth: int, metrics: dict[str, float], data: str = "a,b,label\n") -> str:
    """A lock as `mlspec run` writes it (mlspec.lock's own emitter)."""
    model = sha(f"model{max_depth}")
    steps = {
        "prepare": StepLock(key=sha(f"prepare{data}"), command="python src/prepare.py",
                            deps={"src/prepare.py": sha("p")}, outs={"data/toy.csv": sha(data)}),
        "train": StepLock(key=sha(f"train{max_depth}{data}"), command="python src/train.py",
                          deps={"data/toy.csv": sha(data), "src/train.py": sha("t")},
                          params={"max_depth": max_depth, "n_estimators": 100},
                          outs={"model/model.pkl": model}),
        "evaluate": StepLock(key=sha(f"evaluate{max_depth}{data}"),
                             command="python src/evaluate.py",
                             deps={"data/toy.csv": sha(data), "model/model.pkl": model,
                                   "src/evaluate.py": sha("e")},
                             outs={"metrics.json": sha(json.dumps(metrics, sort_keys=True))},
                             metrics=dict(metrics)),
    }
    env = {"python": "3.11", "requirements": sha("scikit-learn\n")}
    return Lock(env=env, steps=steps).dump()


BASE_METRICS = {"accuracy": 0.9667, "f1_macro": 0.9665, "log_loss": 0.12}
BRANCH_METRICS = {"accuracy": 0.9333, "f1_macro": 0.9331, "log_loss": 0.2}


def write_project(root: Path, max_depth: int, metrics: dict[str, float] | None,
                  data: str = "a,b,label\n") -> None:
    (root / "src").mkdir(parents=True, exist_ok=True)
    for name in ("prepare", "train", "evaluate"):
        (root / "src" / f"{name}.py").write_text(f"# {name}\n")
    (root / "requirements.txt").write_text("scikit-learn\n")
    (root / ".gitignore").write_text("data/\nmodel/\nmetrics.json\nparams.json\n.mlspec/\n")
    (root / "mlspec.yaml").write_text(SPEC.replace("MAXDEPTH", str(max_depth)))
    if metrics is not None:
        (root / "mlspec.lock").write_text(lock_text(max_depth, metrics, data))


def commit(root: Path, message: str, date: str = "2026-01-01T12:00:00Z") -> str:
    git("add", "-A", cwd=root)
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, check=True, env=env)
    return git("rev-parse", "HEAD", cwd=root)


def history(path: Path) -> Path:
    """main: an initial commit, then a committed baseline; branch `deeper`: max_depth 5 -> 3,
    rerun (a worse model). HEAD is left on `deeper`. Commit dates are fixed, so shas are too."""
    root = init_repo(path)
    write_project(root, 5, None)
    commit(root, "start the toy project", "2026-01-01T10:00:00Z")
    write_project(root, 5, BASE_METRICS)
    commit(root, "baseline: max_depth 5", "2026-01-01T11:00:00Z")
    git("checkout", "-q", "-b", "deeper", cwd=root)
    write_project(root, 3, BRANCH_METRICS)
    commit(root, "try max_depth 3", "2026-01-01T12:00:00Z")
    return root
