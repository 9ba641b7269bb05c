"""Helpers for `mlspec run` tests: tiny repositories whose steps are small Python scripts."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import git, init_repo


def make_repo(path: Path, spec: str, files: dict[str, str] | None = None,
              commit: bool = True) -> Path:
    """A real git repository holding mlspec.yaml and the given files."""
    init_repo(path)
    (path / "mlspec.yaml").write_text(textwrap.dedent(spec).lstrip())
    for rel, text in (files or {}).items():
        p = path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip())
    (path / ".gitignore").write_text(".mlspec/\nparams.json\nout/\n")
    if commit:
        git("add", "-A", cwd=path)
        git("commit", "-q", "-m", "init", cwd=path)
    return path


TOY_SPEC = """
version: 1
project: {name: toy}
design:
  hypothesis: score is high
  metrics:
    score: {goal: maximize, threshold: 0.5, primary: true}
model:
  steps:
    make:
      command: python src/make.py
      deps: [src/make.py, src/input.txt]
      params: {factor: 2}
      outs: [out/made.txt]
    score:
      command: python src/score.py
      deps: [src/score.py, out/made.txt]
      metrics: out/metrics.json
  gates:
    - score >= baseline - 0.01
"""

TOY_FILES = {k: textwrap.dedent(v).lstrip() for k, v in {
    "src/input.txt": "3\n",
    "src/make.py": """
        import json, pathlib
        p = json.loads(pathlib.Path("params.json").read_text())
        n = int(pathlib.Path("src/input.txt").read_text())
        pathlib.Path("out/made.txt").write_text(str(n * p["factor"]) + "\\n")
        print("made", n * p["factor"])
    """,
    "src/score.py": """
        import json, pathlib
        n = int(pathlib.Path("out/made.txt").read_text())
        pathlib.Path("out/metrics.json").write_text(json.dumps({"score": n / 10}))
    """,
}.items()}
