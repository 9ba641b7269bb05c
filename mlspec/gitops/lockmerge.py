"""`mlspec merge-lock %O %A %B`: a git merge driver for mlspec.lock, entry by entry.

Two branches that trained different steps both change mlspec.lock; a line merge of the YAML
conflicts or, worse, mixes two steps' records. This driver merges the three locks (base, ours,
theirs) section by section and entry by entry:

- `steps`, `sweeps`: one entry per step. An entry changed on one side only (added, changed or
  removed) takes that side; changed the same way on both, either; changed differently on both,
  it is dropped: the step has no record, so `mlspec status` shows it stale and `mlspec run`
  re-runs it. A step dropped this way loses its sweep record too (it described the dropped
  runs). Never a conflict marker in the lock.
- `env` (python version, requirements hash): the same rule per key. A key both sides changed
  differently is dropped: every step recorded under either value is then stale by its key, as
  it should be, since the merged environment is neither side's.
- `version`: both sides must be a lock this mlspec reads; otherwise the driver fails and git
  falls back to a conflict.

The result is written into %A (git's "ours" file, which git then takes as the merge result).
Exit 0 with a valid lock; exit 2, writing nothing, when a file is not a valid lock.

Installed per repository: `.gitattributes` holds `mlspec.lock merge=mlspec-lock` (`mlspec
init` writes it), and each clone runs
`git config merge.mlspec-lock.driver "mlspec merge-lock %O %A %B"` (git config is not
committed, so a repository cannot run a command on merge by itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError, Outcome
from mlspec.fsutil import write_atomic
from mlspec.run.lock import Lock, StepLock, SweepLock, dump_yaml

DRIVER = "mlspec-lock"
GITATTRIBUTES_LINE = f"{layout.LOCK} merge={DRIVER}"
GIT_CONFIG_COMMAND = f'git config merge.{DRIVER}.driver "mlspec merge-lock %O %A %B"'

V = TypeVar("V")


@dataclass
class Merged:
    lock: Lock
    dropped: list[str] = field(default_factory=list)  # "steps.train", "env.requirements", …


def merge_entries(base: dict[str, V], ours: dict[str, V], theirs: dict[str, V],
                  norm: Callable[[V], object] = repr) -> tuple[dict[str, V], list[str]]:
    """Three-way merge of mappings, entry by entry: (merged, the keys changed on both sides
    differently, which are left out). Entries are compared by `norm(entry)`."""

    def eq(a: V | None, b: V | None) -> bool:
        if a is None or b is None:
            return a is None and b is None
        return norm(a) == norm(b)

    merged: dict[str, V] = {}
    dropped: list[str] = []
    for key in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if eq(o, t) or eq(t, b):
            pick = o
        elif eq(o, b):
            pick = t
        else:
            dropped.append(key)
            continue
        if pick is not None:
            merged[key] = pick
    return merged, dropped


def merge_locks(base: Lock, ours: Lock, theirs: Lock) -> Merged:
    def text(entry: StepLock | SweepLock) -> str:  # as the lock writes it (.nan equals .nan)
        return dump_yaml(entry.to_data())

    steps, dropped_steps = merge_entries(base.steps, ours.steps, theirs.steps, text)
    sweeps, dropped_sweeps = merge_entries(base.sweeps, ours.sweeps, theirs.sweeps, text)
    for name in dropped_steps:
        sweeps.pop(name, None)  # it described runs the merged lock no longer records
    env, dropped_env = merge_entries(base.env, ours.env, theirs.env)
    lock = Lock(env=env, steps=steps, sweeps=sweeps)
    dropped = ([f"steps.{n}" for n in dropped_steps] + [f"env.{k}" for k in dropped_env]
               + [f"sweeps.{n}" for n in dropped_sweeps if n not in dropped_steps])
    return Merged(lock, dropped)


def _read(path: Path, role: str) -> Lock:
    shown = f"{layout.LOCK} ({role})"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MlspecError([Diagnostic(shown, 0, 0, f"cannot read {path}: {exc}",
                                      "merge-lock.read", None)]) from None
    return Lock.parse(text, file=shown)


def merge_lock_files(base: Path, ours: Path, theirs: Path) -> Outcome:
    """The driver: merge the three files, write the result into `ours` (%A)."""
    errors: list[Diagnostic] = []
    locks: list[Lock] = []
    for path, role in ((base, "base"), (ours, "ours"), (theirs, "theirs")):
        try:
            locks.append(_read(path, role))
        except MlspecError as err:
            errors.extend(err.diagnostics)
    if errors:
        raise MlspecError(errors)
    merged = merge_locks(*locks)
    write_atomic(Path(ours), merged.lock.dump())
    notes = "".join(
        f"mlspec merge-lock: {what} changed on both branches; dropped"
        f"{' (the step is stale: `mlspec run` re-runs it)' if what.startswith('steps.') else ''}"
        "\n" for what in merged.dropped)
    return Outcome(stderr=notes)
