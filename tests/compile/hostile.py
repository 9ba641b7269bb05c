"""A small spec with every string field that reaches a generated file, compiled in-process, so
tests can put a hostile value in one field and compare the output with the clean compile."""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from mlspec.compile.driver import render_all
from mlspec.errors import MlspecError
from mlspec.spec.loader import load_spec

Spec = dict[str, Any]

BASE: Spec = {
    "version": 1,
    "project": {"name": "p", "python": "3.11", "requirements": "requirements.txt"},
    "design": {"hypothesis": "h", "metrics": {"auc": {"goal": "maximize", "primary": True}}},
    "data": {"steps": {"prep": {"command": "python src/prep.py", "deps": ["src/prep.py"],
                                "outs": ["data/x.csv"]}},
             "refresh": "0 3 * * 1"},
    "model": {"steps": {"train": {"command": "python src/train.py",
                                  "deps": ["src/train.py", "data/x.csv"],
                                  "outs": ["model/m.pkl"], "metrics": "metrics.json"}}},
    "ci": {"targets": ["github", "gitlab"], "secrets": {"registry_password": "REGISTRY_TOKEN"}},
    "inference": {
        "image": {"name": "ghcr.io/acme/b", "base": "python:3.11-slim"},
        "serve": {"command": "mlspec serve model/m.pkl --port 8080", "port": 8080,
                  "health": "/healthz"},
        "deploy": {"staging": {"when": "main", "url": "https://staging.example.com",
                               "command": "./deploy.sh staging"}},
        "monitor": {"schedule": "0 * * * *", "command": "python src/monitor.py"}},
}

Files = dict[str, str]


def compile_spec(root: Path, spec: Spec, targets: str | None = None) -> Files | None:
    """The generated files (path -> text) of spec, or None when mlspec refuses it (validate or
    compile: either is a located diagnostic, never a traceback)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "src").mkdir(exist_ok=True)
    for f in ("prep.py", "train.py", "monitor.py"):
        (root / "src" / f).write_text("")
    req = spec["project"].get("requirements")
    if req:
        try:
            (root / req).parent.mkdir(parents=True, exist_ok=True)
            (root / req).write_text("scikit-learn\n")
        except (OSError, ValueError):
            return None  # the file system refuses the name: so would the user's repository
    (root / "mlspec.yaml").write_text(json.dumps(spec))
    try:
        loaded = load_spec(root / "mlspec.yaml")
        files, _, _ = render_all(loaded, targets or "github,gitlab,docker")
    except MlspecError:
        return None
    return files


def mutated(change: Callable[[Spec], object]) -> Spec:
    spec = copy.deepcopy(BASE)
    change(spec)
    return spec


def github(files: Files, flow: str) -> Any:
    """A workflow parsed as GitHub does (YAML 1.2)."""
    return YAML(typ="safe", pure=True).load(files[f".github/workflows/mlspec-{flow}.yml"])


def gitlab(files: Files) -> Any:
    """.gitlab-ci.yml parsed as GitLab does (YAML 1.1)."""
    return yaml.safe_load(files[".gitlab-ci.yml"])


def step(job: Any, name: str) -> Any:
    (found,) = [s for s in job["steps"] if s["name"] == name]
    return found


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, comments dropped, continuations joined."""
    out: list[tuple[str, str]] = []
    logical = ""
    for line in text.split("\n"):
        if not logical and (line.startswith("#") or not line.strip()):
            continue
        if line.endswith("\\"):
            logical += line[:-1]
            continue
        logical += line
        word, _, rest = logical.strip().partition(" ")
        out.append((word, rest))
        logical = ""
    return out


def dockerignore(files: Files) -> list[str]:
    return [ln for ln in files[".dockerignore"].split("\n") if ln and not ln.startswith("#")]


def shell_words(text: str) -> list[str]:
    return shlex.split(text)
