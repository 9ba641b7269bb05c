"""Builders for the metric-history tests: real git repositories whose default branch has many
commits, each changing mlspec.lock, written with `git fast-import` (thousands of real commits
in well under a second) and checked out for real.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import git, init_repo

from mlspec.run.lock import Lock, StepLock, SweepLock

SPEC = """\
version: 1
project:
  name: history
  python: "3.11"
design:
  hypothesis: Macro F1 climbs release after release
  metrics:
    accuracy: {goal: maximize}
    f1_macro: {goal: maximize, primary: true}
    log_loss: {goal: minimize}
model:
  steps:
    evaluate:
      command: python evaluate.py
      metrics: metrics.json
ci:
  default_branch: main
"""
T0 = 1767261600  # 2026-01-01T10:00:00Z: fixed, so shas are the same on every run


def lock_text(metrics: dict[str, float], sweep: SweepLock | None = None) -> str:
    lock = Lock(env={"python": "3.11"},
                steps={"evaluate": StepLock(key="sha256:" + "0" * 64, command="python e.py",
                                            metrics=metrics)})
    if sweep is not None:
        lock.sweeps["train"] = sweep
    return lock.dump()


def _blob(path: str, text: str) -> bytes:
    data = text.encode()
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def fast_history(root: Path, locks: list[str | None], tags: dict[int, str] | None = None,
                 annotated: dict[int, str] | None = None, subdir: str = "",
                 spec: str | None = None) -> list[str]:
    """Commits on main, the i-th writing locks[i] as the lock (None: deleting it), with the
    spec beside it from the first; light tags and annotated tags by commit index. Checks main
    out; returns the shas, oldest first."""
    init_repo(root)
    where = f"{subdir}/" if subdir else ""
    spec_text = spec if spec is not None else SPEC
    stream = bytearray()
    for i, text in enumerate(locks):
        msg = f"commit {i}\n".encode()
        stream += (f"commit refs/heads/main\nmark :{i + 1}\n"
                   f"committer t <t@example.com> {T0 + 60 * i} +0000\n"
                   f"data {len(msg)}\n").encode() + msg
        if i == 0:
            stream += _blob(f"{where}mlspec.yaml", spec_text)
        stream += (f"D {where}mlspec.lock\n".encode() if text is None
                   else _blob(f"{where}mlspec.lock", text))
        stream += b"\n"
    for i, name in (tags or {}).items():
        stream += f"reset refs/tags/{name}\nfrom :{i + 1}\n\n".encode()
    for i, name in (annotated or {}).items():
        msg = f"release {name}\n".encode()
        stream += (f"tag {name}\nfrom :{i + 1}\ntagger t <t@example.com> {T0 + 60 * i} +0000\n"
                   f"data {len(msg)}\n").encode() + msg + b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=bytes(stream),
                   check=True, capture_output=True)
    git("checkout", "-q", "-f", "main", cwd=root)
    return git("rev-list", "--reverse", "main", cwd=root).split()
