"""Which spec a command means: `-f PATH` as given, else mlspec.yaml here or above, as git does.

Without `-f`, the search starts in the current directory and goes up one directory at a time,
stopping at the repository root (the first directory holding `.git`) or the filesystem root.
A spec found above is named relative to where the user is (`../mlspec.yaml`), so every
diagnostic points at a path they can open; the steps still run in the spec's directory (the
loader's `root`). No spec anywhere: an error that says where it looked and, when specs exist
below, names them instead of advising `mlspec init`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError

SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", layout.STATE}
BELOW_DEPTH = 3  # how deep to look for specs below cwd when none is found above


@dataclass(frozen=True)
class Located:
    """The spec path to load (as the user would name it) and a note when it is not in cwd."""

    path: Path
    note: str = ""


def _repo_top(start: Path) -> Path | None:
    """The closest directory at or above `start` that holds `.git` (a dir, or a file in a
    worktree/submodule), or None outside a repository."""
    for d in (start, *start.parents):
        if os.path.lexists(d / ".git"):
            return d
    return None


def find_upward(start: Path) -> Path | None:
    """mlspec.yaml in `start` or a parent, up to the repository root (inclusive)."""
    start = Path(os.path.abspath(start))
    top = _repo_top(start)
    for d in (start, *start.parents):
        candidate = d / layout.SPEC
        if candidate.is_file():
            return candidate
        if d == top:
            return None
    return None


def find_below(start: Path, limit: int = 5) -> list[str]:
    """Specs a few directories below `start` (for the hint when none is above), sorted."""
    found: list[str] = []
    start = Path(os.path.abspath(start))
    for dirpath, dirnames, filenames in os.walk(start):
        rel = Path(dirpath).relative_to(start)
        depth = 0 if rel == Path(".") else len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIP_DIRS and not d.startswith(".")) \
            if depth < BELOW_DEPTH else []
        if depth and layout.SPEC in filenames:
            found.append((rel / layout.SPEC).as_posix())
    return sorted(found)[:limit]


def _shown(path: Path, cwd: Path) -> str:
    rel = os.path.relpath(path, cwd)
    return rel if not rel.startswith(f"..{os.sep}..{os.sep}..{os.sep}") else str(path)


def missing(given: Path, cwd: Path | None = None) -> MlspecError:
    """The error for a spec that is not there, with advice that fits what exists around."""
    cwd = Path(os.path.abspath(cwd or Path.cwd()))
    shown = given.as_posix()
    above = find_upward(cwd)
    if above is not None and os.path.abspath(given) != str(above):
        hint = (f"a spec exists at {_shown(above, cwd)}: run the command without -f, "
                f"or pass -f {_shown(above, cwd)}")
    else:
        below = find_below(cwd)
        if below:
            hint = "specs below this directory: " + ", ".join(below) + \
                f"; pass one with -f, e.g. -f {below[0]}"
        else:
            hint = "run `mlspec init` to create one (or pass the spec with -f PATH)"
    return MlspecError([Diagnostic("", 0, 0, f"no spec at {shown}", "spec.missing-file", hint)])


def locate(given: Path | None, cwd: Path | None = None) -> Located:
    """The spec a command should load: `given` as is, or the nearest mlspec.yaml upward."""
    if given is not None:
        if not os.path.isfile(given):
            raise missing(given, cwd)
        return Located(given)
    here = Path(os.path.abspath(cwd or Path.cwd()))
    found = find_upward(here)
    if found is None:
        top = _repo_top(here)
        where = (f"in {here} or above it up to the repository root {top}" if top and top != here
                 else f"in {here}")
        hint = missing(Path(layout.SPEC), here).diagnostics[0].hint
        raise MlspecError([Diagnostic("", 0, 0, f"no {layout.SPEC} {where}",
                                      "spec.missing-file", hint)])
    if found.parent == here:
        return Located(Path(layout.SPEC))
    rel = Path(_shown(found, here))
    return Located(rel, f"mlspec: using {rel.as_posix()} (found in {found.parent}); "
                        "steps run there\n")
