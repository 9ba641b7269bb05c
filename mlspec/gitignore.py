"""Keep the project's .gitignore covering every output mlspec run writes.

Declared outs, metrics files, params.json and .mlspec/ are reproduced from mlspec.lock, so they
are not committed: a project without these lines gets "uncommitted changes: data/raw.csv …"
from `mlspec release`. `mlspec compile` and `mlspec run` call `ensure` to append the missing
lines (anchored with a leading '/', in the .gitignore beside the spec) and say which. A user's
line is never removed or rewritten, and an out the user un-ignores on purpose (`!model/`) is
left alone. Whether a path is covered is asked of git itself (`git check-ignore`) when the
project is in a repository, so every pattern form counts.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec import layout
from mlspec.fsutil import write_atomic

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec

NAME = ".gitignore"
PROBE = "mlspec-probe"  # a name asked of git for a directory out
HEADER = "# outputs of `mlspec run`, reproduced from mlspec.lock (added by mlspec)"


def outputs(loaded: LoadedSpec) -> list[str]:
    """Every path `mlspec run` writes, relative to the spec's directory, in a stable order."""
    paths: list[str] = []
    graph = loaded.graph
    for name in graph.order:
        step = graph.steps[name]
        paths.extend(str(o) for o in step.outs)
        if step.metrics:
            paths.append(str(step.metrics))
    paths += [layout.PARAMS_FILE, f"{layout.STATE}/"]
    return list(dict.fromkeys(p.strip("/") + ("/" if p.endswith("/") else "") for p in paths))


def _git_verdicts(root: Path, paths: list[str]) -> dict[str, bool] | None:
    """path -> ignored (True) / explicitly un-ignored by a '!' pattern (False); a path no
    pattern matches is absent. None when git cannot answer (no repository, no git)."""
    # a directory that does not exist yet matches 'dir/' patterns only through a child
    asked = {(p + PROBE if p.endswith("/") else p): p for p in paths}
    try:
        proc = subprocess.run(
            ["git", "check-ignore", "--no-index", "-v", "-n", "--stdin", "-z"],
            cwd=root, input="".join(f"{q}\0" for q in asked),
            capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode not in (0, 1):
        return None  # 128: not a repository
    fields = proc.stdout.split("\0")
    out: dict[str, bool] = {}
    for i in range(0, len(fields) - 3, 4):  # source, line, pattern, path
        source, pattern, path = fields[i], fields[i + 2], fields[i + 3]
        if source and path in asked:
            out[asked[path]] = not pattern.startswith("!")
    return out


def _plain_verdicts(lines: list[str], paths: list[str]) -> dict[str, bool]:
    """Without git: a path is covered by its own line or a line naming a parent directory."""
    have = {ln.strip() for ln in lines}
    out: dict[str, bool] = {}
    for p in paths:
        parts = p.rstrip("/").split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        for pre in prefixes:
            if have & {pre, f"/{pre}", f"{pre}/", f"/{pre}/"}:
                out[p] = True
            if have & {f"!{pre}", f"!/{pre}", f"!{pre}/", f"!/{pre}/"}:
                out[p] = False
    return out


def missing(loaded: LoadedSpec) -> list[str]:
    """The lines .gitignore lacks (anchored: '/data/raw.csv', '/.mlspec/')."""
    root = loaded.root
    path = root / NAME
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    paths = outputs(loaded)
    verdicts = _git_verdicts(root, paths)
    if verdicts is None:
        verdicts = _plain_verdicts(lines, paths)
    return [f"/{p}" for p in paths if p not in verdicts]


def ensure(loaded: LoadedSpec, write: bool = True) -> str:
    """Append the missing lines to .gitignore (when `write`); what was done, as a note ('' when
    nothing was missing)."""
    lines = missing(loaded)
    if not lines:
        return ""
    path = loaded.root / NAME
    shown = os.path.relpath(path) if path.is_absolute() else str(path)
    if not write:
        return f"note: {shown} does not ignore {', '.join(lines)} (outputs of `mlspec run`)\n"
    if path.is_symlink() or (path.exists() and not path.is_file()):
        return f"note: {shown} is not a regular file; add these lines to it: {' '.join(lines)}\n"
    try:
        old = path.read_text(encoding="utf-8", errors="surrogateescape") if path.exists() else ""
        sep = "" if not old or old.endswith("\n") else "\n"
        block = ("\n" if old.strip() else "") + HEADER + "\n" + "".join(f"{ln}\n" for ln in lines)
        write_atomic(path, old + sep + block)
    except (OSError, UnicodeError) as exc:
        return f"note: cannot update {shown} ({exc}); add these lines: {' '.join(lines)}\n"
    return (f"added to {shown}: {', '.join(lines)} (outputs of `mlspec run` are reproduced "
            "from mlspec.lock, not committed)\n")
