"""Metric history: the declared metrics across the default branch's last commits that changed
mlspec.lock, the release tags, and this change (`mlspec metrics --history`, the PR report).

Read from git objects only, in four `git` processes whatever the number of commits: rev-parse
(where the spec sits, HEAD), for-each-ref (the default branch and the release tags), a
first-parent `log` of the lock's path, and one `cat-file --batch` for every lock. No checkout,
no GitPython. Everything read is untrusted: a missing or corrupt lock is a note on its point,
never an error; tag names that are not release versions are not read.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec import layout
from mlspec.errors import MlspecError, Outcome
from mlspec.gitops import xychart
from mlspec.gitops.gitrefs import SEMVER, _batch_objects
from mlspec.gitops.metricsdiff import md_code, md_escape
from mlspec.run.lock import Lock, read_lock
from mlspec.run.lockfast import parse_emitted
from mlspec.tables import num, table

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec
    from mlspec.spec.root import Spec

DEFAULT_LIMIT = 20
THIS_PR = "this PR"
WORKTREE = "working tree"
MAX_LOCK_BYTES = 8 * 1024 * 1024  # a lock larger than this is not parsed (a note instead)


@dataclass
class Point:
    label: str  # short sha, release tag(s), "this PR" or "working tree"
    kind: str  # commit | tag | worktree
    commit: str | None
    date: str  # the commit's date (UTC, from git); "" for the working tree
    metrics: dict[str, float]
    tags: list[str] = field(default_factory=list)
    note: str = ""  # "no mlspec.lock", "corrupt mlspec.lock"


@dataclass
class History:
    branch: str | None  # the ref the commits came from (origin/main, main), None when none
    metrics: list[tuple[str, str | None]]  # (name, goal), the primary first
    points: list[Point]  # oldest first; the working tree's point last
    notes: list[str] = field(default_factory=list)
    dropped: int = 0  # oldest points left out (a size limit)

    @property
    def primary(self) -> str | None:
        return self.metrics[0][0] if self.metrics else None

    @property
    def current(self) -> Point | None:
        return self.points[-1] if self.points and self.points[-1].kind == "worktree" else None

    def keep(self, n: int) -> History:
        """The newest n points of the history (the working tree's point always stays)."""
        past = [p for p in self.points if p.kind != "worktree"]
        cur = [p for p in self.points if p.kind == "worktree"]
        n = max(0, min(n, len(past)))
        kept = past[len(past) - n:] if n else []
        return replace(self, points=kept + cur, dropped=self.dropped + len(past) - n)

    def to_data(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "primary": self.primary,
            "metrics": [{"name": n, "goal": g, "primary": n == self.primary}
                        for n, g in self.metrics],
            "points": [{"label": p.label, "kind": p.kind, "commit": p.commit, "date": p.date,
                        "tags": list(p.tags), "note": p.note,
                        "metrics": {n: _finite(p.metrics.get(n)) for n, _ in self.metrics}}
                       for p in self.points],
            "notes": list(self.notes),
            "dropped": self.dropped,
        }


def _finite(v: float | None) -> float | None:
    """JSON has no NaN or infinity: those are null, as a missing value is."""
    return v if v is not None and math.isfinite(v) else None


def declared(spec: Spec, current: Lock | None) -> list[tuple[str, str | None]]:
    """The design's metrics, the primary first; without a design, the current lock's."""
    design = spec.design
    if design is not None and design.metrics:
        primary = design.primary
        names = [primary] + [n for n in design.metrics if n != primary]
        return [(str(n), design.metrics[str(n)].goal) for n in names if n is not None]
    return [(n, None) for n in sorted(current.metrics())] if current is not None else []


# -- reading git ----------------------------------------------------------------------------
def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    try:
        r = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True,
                           check=False)
    except OSError:
        return None
    return r.stdout if r.returncode == 0 else None


@dataclass
class _Commit:
    sha: str
    when: int


def _refs(root: Path, branch: str) -> tuple[dict[str, _Commit], list[tuple[str, _Commit]]]:
    """The default branch's candidates by ref name, and every release-shaped tag's commit."""
    fmt = "%00".join(["%(refname)", "%(objecttype)", "%(objectname)", "%(committerdate:unix)",
                      "%(*objecttype)", "%(*objectname)", "%(*committerdate:unix)"])
    heads = (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}")
    out = _git(root, "for-each-ref", f"--format={fmt}", *heads, "refs/tags/")
    branches: dict[str, _Commit] = {}
    tags: list[tuple[str, _Commit]] = []
    for line in (out or b"").decode("utf-8", "replace").split("\n"):
        parts = line.split("\0")
        if len(parts) != 7:
            continue
        name, kind, sha, when, pkind, psha, pwhen = parts
        if kind == "tag" and pkind == "commit":
            kind, sha, when = pkind, psha, pwhen
        if kind != "commit" or not when.isdigit():
            continue
        if name in heads:
            branches[name] = _Commit(sha, int(when))
        elif name.startswith("refs/tags/"):
            tags.append((name.removeprefix("refs/tags/"), _Commit(sha, int(when))))
    return branches, tags


def _log(root: Path, tip: str, limit: int) -> list[_Commit]:
    """The newest `limit` first-parent commits from `tip` that changed the lock, oldest first."""
    out = _git(root, "log", "--first-parent", f"-n{limit}", "--format=%H %ct", tip, "--",
               layout.LOCK)
    commits = []
    for line in (out or b"").decode().split("\n"):
        sha, _, when = line.partition(" ")
        if sha and when.isdigit():
            commits.append(_Commit(sha, int(when)))
    return commits[::-1]


def _locks(root: Path, prefix: str, shas: list[str]) -> dict[str, tuple[dict[str, float], str]]:
    """(metrics, note) of the lock in each commit, from one `git cat-file --batch`."""
    request = "".join(f"{sha}:{prefix}{layout.LOCK}\n" for sha in shas).encode()
    objects = _batch_objects(_git(root, "cat-file", "--batch", stdin=request) or b"")
    parsed: dict[bytes, tuple[dict[str, float], str]] = {}  # by blob: tags share locks
    out: dict[str, tuple[dict[str, float], str]] = {}
    for sha, obj in zip(shas, objects, strict=False):
        if obj is None or obj[1] != b"blob":
            out[sha] = ({}, f"no {layout.LOCK}")
            continue
        if obj[0] not in parsed:
            parsed[obj[0]] = _metrics_of(obj[2])
        out[sha] = parsed[obj[0]]
    return out


def _metrics_of(data: bytes) -> tuple[dict[str, float], str]:
    if len(data) > MAX_LOCK_BYTES:
        return {}, f"{layout.LOCK} too large to read"
    try:
        text = data.decode("utf-8")
        fast = parse_emitted(text)  # read as Lock.parse reads it, or None: not its shape
        lock = Lock.from_data(fast) if fast is not None else Lock.parse(text)
        return lock.metrics(), ""
    except (MlspecError, UnicodeDecodeError, RecursionError, TypeError, ValueError, KeyError,
            AttributeError):
        return {}, f"corrupt {layout.LOCK}"


def _date(when: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(when))


def gather(root: Path, spec: Spec, current: Lock | None, limit: int = DEFAULT_LIMIT
           ) -> History:
    """The history of the declared metrics: the last `limit` commits of the default branch
    that changed the lock, its newest `limit` release tags, and the working tree's lock."""
    h = History(None, declared(spec, current), [])
    head = _git(root, "rev-parse", "--show-prefix", "--is-shallow-repository", "HEAD",
                "--symbolic-full-name", "HEAD")
    lines = head.decode("utf-8", "replace").split("\n") if head is not None else []
    if len(lines) < 4:
        h.notes.append("no git history here (not a git repository, or no commit yet)")
        return _with_current(h, current, False)
    prefix, shallow, head_sha, head_ref = lines[:4]
    default = spec.ci.default_branch
    branches, tags = _refs(root, default)
    names = [f"refs/remotes/origin/{default}", f"refs/heads/{default}"]
    found = next((n for n in names if n in branches), None)
    commits: list[_Commit] = []
    if found is None:
        h.notes.append(f"the default branch '{default}' is not in this clone: fetch it "
                       f"(e.g. `git fetch --depth=50 origin {default}`) to see its history")
    else:
        h.branch = found.removeprefix("refs/remotes/").removeprefix("refs/heads/")
        commits = _log(root, branches[found].sha, limit)
        if shallow == "true" and len(commits) < limit:
            h.notes.append("this is a shallow clone: older commits are not fetched (fetch "
                           "them, e.g. actions/checkout `fetch-depth: 0`, GitLab `GIT_DEPTH: 0`)")
    prefix_tag = spec.ci.tag_prefix
    releases = sorted(((c.when, name, c) for name, c in tags
                       if name.startswith(prefix_tag) and SEMVER.fullmatch(name[len(prefix_tag):])),
                      key=lambda t: (t[0], t[1]))[-limit:] if limit else []
    shas = list(dict.fromkeys([c.sha for c in commits] + [c.sha for _, _, c in releases]))
    locks = _locks(root, prefix, shas) if shas else {}
    points: dict[str, tuple[int, int, Point]] = {}
    for i, c in enumerate(commits):
        metrics, note = locks.get(c.sha, ({}, ""))
        points[c.sha] = (c.when, i, Point(c.sha[:7], "commit", c.sha, _date(c.when), metrics,
                                          note=note))
    for when, name, c in releases:
        if c.sha not in points:
            metrics, note = locks.get(c.sha, ({}, ""))
            points[c.sha] = (when, len(points), Point(name, "tag", c.sha, _date(when), metrics,
                                                      note=note))
        point = points[c.sha][2]
        point.tags.append(name)
        point.label = " ".join(point.tags)
    h.points = [p for _, _, p in sorted(points.values(), key=lambda t: (t[0], t[1]))]
    tip = branches[found].sha if found is not None else None
    on_default = head_ref == f"refs/heads/{default}" or (
        head_ref == "HEAD" and head_sha == tip
        and not any(os.environ.get(v) for v in ("GITHUB_BASE_REF", "CI_MERGE_REQUEST_IID")))
    return _with_current(h, current, on_default)


def _with_current(h: History, current: Lock | None, on_default: bool) -> History:
    """Add the working tree's point: "this PR"; on the default branch, "working tree" (left
    out when its metrics are those of the newest commit, which it then is)."""
    if current is None:
        return h
    metrics = current.metrics()
    if on_default:
        newest = h.points[-1] if h.points and h.points[-1].kind == "commit" else None
        if newest is not None and newest.metrics == metrics:
            return h
        h.points.append(Point(WORKTREE, "worktree", None, "", metrics))
    else:
        h.points.append(Point(THIS_PR, "worktree", None, "", metrics))
    return h


# -- rendering ------------------------------------------------------------------------------
def _columns(h: History) -> list[str]:
    return [n for n, _ in h.metrics]


def text_table(h: History) -> str:
    notes = "".join(f"note: {n}\n" for n in _notes(h))
    if not h.points:
        return f"no history: no commit on the default branch changed {layout.LOCK}\n" + notes
    names = _columns(h)
    noted = any(p.note for p in h.points)
    head = ["point", "date", "commit", *[n + (" *" if n == h.primary else "") for n in names]]
    rows = [[p.label, p.date or "—", (p.commit or "")[:12] or "—",
             *[num(p.metrics.get(n)) for n in names], *([p.note] if noted else [])]
            for p in h.points]
    text = table(head + (["note"] if noted else []), rows)
    return text + ("(* primary metric)\n" if h.primary else "") + notes


def csv_text(h: History) -> str:
    """Full-precision values (a spreadsheet's input, not a reader's): '' when missing."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = _columns(h)
    w.writerow(["point", "kind", "date", "commit", *names, "note"])
    for p in h.points:
        values = [repr(v) if (v := p.metrics.get(n)) is not None else "" for n in names]
        w.writerow([p.label, p.kind, p.date, p.commit or "", *values, p.note])
    return buf.getvalue()


def json_text(h: History) -> str:
    return json.dumps(h.to_data(), indent=2, sort_keys=True)


def _notes(h: History) -> list[str]:
    notes = list(h.notes)
    if h.dropped:
        notes.append(f"the {h.dropped} oldest points are left out to keep the comment under "
                     "GitHub's size limit; `mlspec metrics --history` lists them")
    return notes


def chart(h: History) -> str:
    """The primary metric's chart: a bar per commit or tag and this change, and a line at
    this change's value."""
    primary = h.primary
    if primary is None:
        return ""
    cur = h.current
    pts = [(p.label, v) for p in h.points if (v := p.metrics.get(primary)) is not None]
    ref = cur.metrics.get(primary) if cur is not None else None
    return xychart.chart(primary, primary, pts, reference=ref)


def markdown(h: History) -> str:
    """The report's history section (and `--history --format markdown`): the primary metric's
    chart, every declared metric in a table, and notes."""
    primary = h.primary
    if primary is None:
        return "No metrics declared in `design.metrics`.\n"
    goal = dict(h.metrics).get(primary)
    arrow = {"maximize": ", ↑ maximize", "minimize": ", ↓ minimize"}.get(goal or "", "")
    n_commits = sum(1 for p in h.points if p.kind == "commit")
    n_tags = sum(len(p.tags) for p in h.points)
    where = f" of {md_code(h.branch)}" if h.branch else ""
    parts = [f"{n_commits} commit{'s' if n_commits != 1 else ''}{where} that changed "
             f"{md_code(layout.LOCK)}"]
    if n_tags:
        parts.append(f"{n_tags} release tag{'s' if n_tags != 1 else ''}")
    cur = h.current
    if cur is not None:
        parts.append(f"{cur.label} (the line marks its value)")
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    out = [f"{md_code(primary)} (primary{arrow}) over {listed}:", ""]
    body = chart(h)
    plotted = body.count("\n") > 0
    unplotted = sum(1 for p in h.points if (v := p.metrics.get(primary)) is not None
                    and not xychart.plottable(v))
    out += [body] if plotted else ["No value of it to plot yet.", ""]
    if unplotted:
        out += [f"{unplotted} value{'s' if unplotted != 1 else ''} not plotted (NaN, infinite "
                f"or beyond ±{xychart.PLOT_MAX:.0e}): see the table.", ""]
    out += [f"> {md_escape(n)}" for n in _notes(h)]
    if _notes(h):
        out.append("")
    out += ["<details><summary>Values</summary>", "", markdown_table(h), "</details>", ""]
    return "\n".join(out)


def markdown_table(h: History) -> str:
    names = _columns(h)
    head = ["point", "date", *[f"**{md_escape(n)}**" if n == h.primary else md_escape(n)
                               for n in names], "note"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(names) + "---|"]
    for p in h.points:
        point = md_code(p.label) if p.kind != "worktree" else f"**{md_escape(p.label)}**"
        cells = [point, p.date or "—", *[num(p.metrics.get(n)) for n in names],
                 md_escape(p.note) or ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def history_outcome(loaded: LoadedSpec, limit: int, fmt: str) -> Outcome:
    """`mlspec metrics --history [--limit N] [--format table|markdown|json|csv]`."""
    h = gather(loaded.root, loaded.spec, read_lock(loaded.root), limit)
    text = {"json": json_text, "csv": csv_text, "markdown": markdown}.get(fmt, text_table)(h)
    return Outcome(text=text, data=h.to_data())
