"""The step keys `mlspec gc --remote` keeps: those recorded in mlspec.lock at every release tag
(`<ci.tag_prefix><semver>`), at the default branch's recent commits that changed the lock, and
in this checkout's mlspec.lock.

"Recent" is the newest `keep_last` first-parent commits of the default branch that changed the
lock, plus (with `keep_days`) every such commit of the last `keep_days` days. The default
branch is `origin/<ci.default_branch>` when this clone has it, else `<ci.default_branch>`.
Nothing is fetched: the refs present are read, as `mlspec metrics --history` reads them
(mlspec.gitops.history), from git objects in a few `git` processes (rev-parse, for-each-ref,
one or two `log`, one `cat-file --batch`), no checkout. When the clone has an `origin`, one
`git ls-remote` checks that it is up to date with it first.

Deleting is forever, so this fails closed: a shallow clone, a missing default branch, a
release tag whose commit is not in the clone, or a clone behind its origin (a release tag or
a default-branch commit it has not fetched: their runs would look unreferenced) is an error
(nothing is deleted), and a lock that does not parse protects every `sha256:<hex>` it
contains. The days window filters on each commit's committer time, so one commit with an old
date (a rebase) does not cut it short.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.gitops.gitrefs import SEMVER, _batch_objects
from mlspec.gitops.history import MAX_LOCK_BYTES, _Commit, _git, _refs
from mlspec.run.lock import Lock
from mlspec.run.lockfast import parse_emitted

DEFAULT_KEEP_LAST = 20
KEY = re.compile(rb"sha256:[0-9a-f]{64}")
WORKTREE = "working tree"


@dataclass
class Referenced:
    """The keys to keep, each with where it is referenced (tags, short shas, the working
    tree), and what was read."""

    keys: dict[str, list[str]] = field(default_factory=dict)
    branch: str = ""  # the ref the commits came from (origin/main or main)
    keep_last: int = DEFAULT_KEEP_LAST
    keep_days: int | None = None
    commits: list[str] = field(default_factory=list)  # shas read, newest first
    tags: list[str] = field(default_factory=list)  # release tags read
    notes: list[str] = field(default_factory=list)

    def add(self, keys: set[str], where: str) -> None:
        for k in sorted(keys):
            self.keys.setdefault(k, []).append(where)

    def describe(self) -> list[str]:
        days = f" and those of the last {self.keep_days} days" if self.keep_days else ""
        return [f"kept: runs named by {layout.LOCK} at {len(self.tags)} release tag(s), at "
                f"{len(self.commits)} commit(s) of {self.branch} (the newest "
                f"{self.keep_last} that changed it{days}), and in the working tree",
                *(f"note: {n}" for n in self.notes)]

    def to_data(self) -> dict[str, Any]:
        return {"branch": self.branch, "keep_last": self.keep_last,
                "keep_days": self.keep_days, "commits": list(self.commits),
                "tags": list(self.tags), "keys": len(self.keys), "notes": list(self.notes)}


def _refuse(message: str, hint: str) -> MlspecError:
    return MlspecError([Diagnostic.nowhere(message, "gc.history", hint)])


def _log(root: Path, tip: str, *limits: str) -> list[_Commit]:
    """First-parent commits from `tip` that changed the lock, newest first, with their
    committer times."""
    out = _git(root, "log", "--first-parent", *limits, "--format=%H %ct", tip, "--",
               layout.LOCK)
    if out is None:
        raise _refuse(f"git log of {layout.LOCK} failed", "check the clone with `git fsck`")
    commits = []
    for line in out.decode("utf-8", "replace").split("\n"):
        sha, _, when = line.partition(" ")
        if sha and when.isdigit():
            commits.append(_Commit(sha, int(when)))
    return commits


LS_REMOTE_TIMEOUT = 60


def _up_to_date(root: Path, branch: str, tag_prefix: str, branches: dict[str, _Commit],
                tags: dict[str, _Commit]) -> None:
    """Refuse when the clone has an `origin` it is behind: a release tag there that is not
    here (or points elsewhere), or origin's default branch past the `origin/<branch>` read."""
    if _git(root, "config", "--get", "remote.origin.url") is None:
        return  # no origin: this clone's refs are all there is
    try:
        r = subprocess.run(["git", "ls-remote", "--heads", "--tags", "origin"], cwd=root,
                           capture_output=True, timeout=LS_REMOTE_TIMEOUT, check=False,
                           env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        ok = r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        raise _refuse("cannot reach origin to check that this clone has its release tags "
                      "and default branch", "run it where origin answers `git ls-remote`")
    theirs: dict[str, str] = {}
    for line in r.stdout.decode("utf-8", "replace").split("\n"):
        sha, _, name = line.partition("\t")
        if name.endswith("^{}"):  # an annotated tag's commit
            theirs[name[:-3]] = sha
        elif name not in theirs:
            theirs[name] = sha
    behind = sorted(
        name for full, sha in theirs.items() if full.startswith("refs/tags/")
        for name in [full.removeprefix("refs/tags/")]
        if name.startswith(tag_prefix) and SEMVER.fullmatch(name[len(tag_prefix):])
        and (name not in tags or tags[name].sha != sha))
    if behind:
        shown = ", ".join(behind[:5]) + (f" and {len(behind) - 5} more" if len(behind) > 5
                                         else "")
        raise _refuse(f"origin has release tags this clone lacks or has elsewhere: {shown}",
                      "fetch them first: git fetch --tags origin")
    head = theirs.get(f"refs/heads/{branch}")
    mine = branches.get(f"refs/remotes/origin/{branch}")
    if head is not None and mine is not None and mine.sha != head:
        raise _refuse(f"origin's {branch} is not the origin/{branch} of this clone",
                      f"fetch it first: git fetch origin {branch}")


def keys_in(data: bytes) -> tuple[set[str], str]:
    """The step keys of a lock's bytes, and a note when it could not be read as a lock (then
    every `sha256:<hex>` in it is kept: a superset, never fewer)."""
    try:
        if len(data) > MAX_LOCK_BYTES:
            raise ValueError("too large")
        text = data.decode("utf-8")
        fast = parse_emitted(text)
        lock = Lock.from_data(fast) if fast is not None else Lock.parse(text)
        return {e.key for e in lock.steps.values() if e.key}, ""
    except (MlspecError, UnicodeDecodeError, RecursionError, TypeError, ValueError, KeyError,
            AttributeError):
        return {m.decode() for m in KEY.findall(data)}, "unreadable: every key-shaped hash " \
            "in it is kept"


def referenced(root: Path, default_branch: str, tag_prefix: str,
               keep_last: int = DEFAULT_KEEP_LAST, keep_days: int | None = None,
               now: float | None = None) -> Referenced:
    """The keys named by the lock at the release tags, the recent default-branch commits and
    in the working tree. Raises MlspecError (gc.history) when the clone cannot say."""
    ref = Referenced(keep_last=keep_last, keep_days=keep_days)
    head = _git(root, "rev-parse", "--show-prefix", "--is-shallow-repository", "HEAD")
    lines = head.decode("utf-8", "replace").split("\n") if head is not None else []
    if len(lines) < 3:
        raise _refuse(f"{root} is not a git repository with a commit",
                      "run `mlspec gc --remote` in a clone of the project")
    prefix, shallow = lines[0], lines[1]
    if shallow == "true":
        raise _refuse("this is a shallow clone: release tags and older commits may be missing,"
                      " so runs they need could be deleted",
                      "run it in a full clone (`git fetch --unshallow --tags`)")
    branches, tags = _refs(root, default_branch)
    names = [f"refs/remotes/origin/{default_branch}", f"refs/heads/{default_branch}"]
    found = next((n for n in names if n in branches), None)
    if found is None and _git(root, "for-each-ref", "--count=1") is None:
        raise _refuse("git cannot read this clone's refs (a ref names a missing object)",
                      "see `git for-each-ref`; repair or delete the broken ref")
    if found is None:
        raise _refuse(f"the default branch '{default_branch}' is not in this clone",
                      f"fetch it (`git fetch origin {default_branch}`), or fix "
                      "ci.default_branch")
    ref.branch = found.removeprefix("refs/remotes/").removeprefix("refs/heads/")
    tip = branches[found].sha
    _up_to_date(root, default_branch, tag_prefix, branches, dict(tags))
    commits = _log(root, tip, f"-n{keep_last}") if keep_last > 0 else []
    if keep_days:
        since = (time.time() if now is None else now) - keep_days * 86400
        commits += [c for c in _log(root, tip) if c.when >= since]
    ref.commits = list(dict.fromkeys(c.sha for c in commits))
    releases = sorted(name for name, _ in tags
                      if name.startswith(tag_prefix) and SEMVER.fullmatch(name[len(tag_prefix):]))
    ref.tags = releases
    by_tag = dict(tags)
    wanted = [(sha[:12], sha) for sha in ref.commits] + [(t, by_tag[t].sha) for t in releases]
    request = "".join(f"{sha}^{{commit}}\n{sha}:{prefix}{layout.LOCK}\n" for _, sha in wanted)
    out = _git(root, "cat-file", "--batch", stdin=request.encode()) if wanted else b""
    objects = _batch_objects(out or b"")
    if len(objects) != 2 * len(wanted):
        raise _refuse("git cat-file could not read the locks", "check the clone with "
                      "`git fsck`")
    seen: dict[bytes, tuple[set[str], str]] = {}  # by blob: tags and commits share locks
    for i, (label, _) in enumerate(wanted):
        commit, blob = objects[2 * i], objects[2 * i + 1]
        if commit is None:
            raise _refuse(f"{label}: its commit is not in this clone",
                          "fetch it (`git fetch --tags origin`) before deleting anything")
        if blob is None or blob[1] != b"blob":
            ref.notes.append(f"{label}: no {layout.LOCK}")
            continue
        if blob[0] not in seen:
            seen[blob[0]] = keys_in(blob[2])
        keys, note = seen[blob[0]]
        if note:
            ref.notes.append(f"{label}: {layout.LOCK} {note}")
        ref.add(keys, label)
    _worktree(root, ref)
    return ref


def _worktree(root: Path, ref: Referenced) -> None:
    try:
        data = (root / layout.LOCK).read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _refuse(f"cannot read {layout.LOCK}: {exc.strerror or exc}",
                      "fix its permissions") from None
    keys, note = keys_in(data)
    if note:
        ref.notes.append(f"{WORKTREE}: {layout.LOCK} {note}")
    ref.add(keys, WORKTREE)
