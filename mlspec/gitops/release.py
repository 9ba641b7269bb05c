"""Release tags that promote models, and the list of promoted models.

`mlspec release VERSION` refuses — exit 1, every reason listed — on an existing tag,
a dirty project, a missing or stale lock, or a failing gate; otherwise it creates the annotated
tag `<ci.tag_prefix><VERSION>` on HEAD whose message is the model card. With a remote, the
api hands it a `pin` callable (mlspec.remote.promote): after the checks and before the tag, it
puts every step run of the lock in the remote and returns their manifest digests, which the
card records (mlspec.gitops.pins); when it fails, its Outcome is returned and no tag is made.
It pushes only with --push. `mlspec models` reads the tags back.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec import layout
from mlspec.errors import CheckFailed, Diagnostic, MlspecError, Outcome
from mlspec.gitops import pins as pinning
from mlspec.gitops.gates import spec_gates
from mlspec.gitops.gitrefs import SEMVER, find_base_ref, lock_at, open_repo, repo_relpath, resolve
from mlspec.gitops.lineage import lineage_at
from mlspec.gitops.metricsdiff import evaluate_gates
from mlspec.gitops.modelcard import model_card, short
from mlspec.run.runner import status
from mlspec.tables import num

if TYPE_CHECKING:
    from git import Repo

    from mlspec.run.lock import Lock
    from mlspec.spec.loader import LoadedSpec



def parse_version(loaded: LoadedSpec, version: str) -> tuple[str, str]:
    """(version, tag name); `v1.2.0` is accepted for `1.2.0` when the prefix is `v`."""
    prefix = loaded.spec.ci.tag_prefix
    v = version.strip()
    if prefix and v.startswith(prefix) and SEMVER.fullmatch(v[len(prefix):]):
        v = v[len(prefix):]
    if not SEMVER.fullmatch(v):
        raise MlspecError([Diagnostic("", 0, 0, f"'{version}' is not a release version",
                                      "release.version",
                                      "give MAJOR.MINOR.PATCH, e.g. 1.2.0 or 1.2.0-rc.1")])
    return v, f"{prefix}{v}"


def version_key(v: str) -> tuple[Any, ...]:
    """Semver precedence: 1.10.0 > 1.9.0, and 1.0.0 > 1.0.0-rc.1."""
    m = SEMVER.fullmatch(v)
    if not m:
        return (-1,)
    pre = m.group(4)
    pre_key: tuple[Any, ...] = (1,) if pre is None else (0, *(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), pre_key)


def _dirty(repo: Repo, rel: str) -> list[str]:
    """Changed or untracked paths of the project; mlspec's own cache (.mlspec/) is not one."""
    out = repo.git.status("--porcelain", "--untracked-files=all", "--", rel or ".")
    cache = f"{rel}/{layout.STATE}/" if rel else f"{layout.STATE}/"
    paths = (line[3:] for line in str(out).splitlines() if line.strip())
    return sorted(p for p in paths if not p.strip('"').startswith(cache))


def stale_steps(loaded: LoadedSpec) -> dict[str, list[str]]:
    """Steps whose inputs or outputs no longer match the lock, with the reasons: the runner's
    own status check (keys, params, deps, environment, outs on disk)."""

    data = status(loaded).data or {}
    steps = data.get("steps", {})
    return {name: list(steps.get(name, {}).get("reasons", [])) for name in data.get("stale", [])}


Pinner = Callable[[str], "pinning.Pins | Outcome"]  # the release tag -> its pins


def release(loaded: LoadedSpec, version: str, message: str | None = None,
            push: bool = False, pin: Pinner | None = None) -> Outcome:

    v, tag = parse_version(loaded, version)
    if message is not None and pinning.mentions(message):
        raise MlspecError([Diagnostic.nowhere(
            f"the release notes hold '{pinning.START}': they would forge the pinned runs",
            "release.message", "remove that line from --message")])
    repo = open_repo(loaded.root)
    assert repo is not None
    head = resolve(repo, "HEAD")
    if head is None:
        raise CheckFailed(f"cannot release {tag}: the repository has no commit yet")
    reasons: list[str] = []
    existing = resolve(repo, f"refs/tags/{tag}")
    if existing is not None:
        reasons.append(f"tag {tag} already exists (on {existing[:12]}): pick a new version")
    rel = repo_relpath(repo, loaded.root)
    dirty = _dirty(repo, rel)
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        reasons.append(f"uncommitted changes: {shown} — commit or stash them; a release tags "
                       "exactly what is committed")
    lock = lock_at(loaded.root, "HEAD")
    if lock is None:
        reasons.append("mlspec.lock is not committed: run `mlspec run`, then commit mlspec.lock")
    else:
        for name, why in stale_steps(loaded).items():
            reasons.append(f"mlspec.lock is stale: step '{name}': {'; '.join(why)} — run "
                           "`mlspec run` and commit mlspec.lock")
        reasons += _gate_reasons(loaded, lock)
    if reasons:
        raise CheckFailed(f"cannot release {tag}:\n" + "".join(f"  - {r}\n" for r in reasons)
                          .rstrip("\n"))
    pins = pin(tag) if pin is not None else None
    if isinstance(pins, Outcome):
        pins.text = "\n".join(t for t in (pins.text, f"no tag created: {tag}") if t)
        return pins
    lin = lineage_at(loaded, "HEAD")
    lin.ref = tag
    lin.tag = {"name": tag, "tagger": "", "date": "", "annotated": "true"}
    lin.pins = pins
    card = model_card(lin, v, message)
    import git

    with tempfile.TemporaryDirectory() as tmp:
        msg = Path(tmp) / "TAG_MSG"
        msg.write_text(card, encoding="utf-8", newline="\n")  # the pins parser reads LF
        try:
            repo.git.tag("-a", "--cleanup=verbatim", "-F", str(msg), tag, head)
        except git.GitCommandError as err:
            detail = str(err.stderr or "").strip().removeprefix("stderr:").strip(" '")
            hint = ("\n  hint: tell git who tags: git config user.name \"…\" && "
                    "git config user.email \"…\"") if "ident" in detail else ""
            raise CheckFailed(f"git could not create tag {tag}: {detail}{hint}") from None
    data = {"tag": tag, "version": v, "commit": head, "metrics": lin.metrics, "pushed": False,
            "pins": pins.to_data() if pins else None}
    text = f"tagged {tag} at {head[:12]}"
    if lin.primary and lin.primary in lin.metrics:
        text += f" ({lin.primary} {lin.metrics[lin.primary]:g})"
    if pins is not None:
        text += f"\npinned {len(pins.runs)} step runs in {pins.remote} by manifest digest"
    unmerged = _unmerged_note(repo, loaded.spec.ci.default_branch)
    if unmerged:
        text += f"\nnote: {unmerged}"
    if push:
        _push(repo, tag)
        data["pushed"] = True
        text += f"; pushed to {_remote(repo)}"
    else:
        text += f"\npush it to promote the model: git push {_remote(repo)} {tag}"
    return Outcome(text=text, data=data)


def _gate_reasons(loaded: LoadedSpec, lock: Lock) -> list[str]:
    """Every failing gate, judged against the base (on the default branch: the previous
    commit) the same way `mlspec run` judges it."""

    baseline = None
    if any(g.relative for g in spec_gates(loaded)):
        try:
            base = find_base_ref(loaded.root, None, loaded.spec.ci.default_branch)
        except MlspecError as err:
            d = err.diagnostics[0]
            return [f"gates need a baseline: {d.message}" + (f" — {d.hint}" if d.hint else "")]
        base_lock = lock_at(loaded.root, base) if base else None
        baseline = base_lock.metrics() if base_lock is not None else None
    out = []
    for g in evaluate_gates(loaded, lock.metrics(), baseline, lock):
        if g.passed is False:
            bar = f" (threshold {num(g.threshold)})" if g.threshold is not None else ""
            value = num(g.value) if g.value is not None else "missing"
            why = f": {g.note}" if g.value is None and g.note else ""
            out.append(f"gate failed: {g.gate}: {g.metric} = {value}{bar}{why}")
    return out


def _unmerged_note(repo: Repo, branch: str) -> str:
    """A note when the tagged commit is not on the remote default branch (yet)."""
    import git


    target = f"origin/{branch}"
    if resolve(repo, target) is None:
        return ""
    try:
        repo.git.merge_base("--is-ancestor", "HEAD", target)
    except git.GitCommandError:
        return (f"this commit is not on {target}: the release promotes a model that has not "
                "been merged")
    return ""


def _remote(repo: Repo) -> str:
    names = [r.name for r in repo.remotes]
    return "origin" if "origin" in names or not names else names[0]


def _push(repo: Repo, tag: str) -> None:
    import git

    remote = _remote(repo)
    try:
        repo.git.push(remote, f"refs/tags/{tag}")
    except git.GitCommandError as err:
        detail = str(err.stderr or "").strip().replace("stderr: ", "")
        raise CheckFailed(f"tagged {tag} locally, but pushing it to {remote} failed: {detail}\n"
                          f"retry with: git push {remote} {tag}") from None


def _pins_cell(row: dict[str, Any]) -> str:
    if row["pins_error"]:
        return f"refused: see `mlspec lineage {row['tag']}`"
    if not row["pins"]:
        return "—"
    return ", ".join(f"{s}@{short(r['digest'])}" for s, r in row["pins"]["runs"].items())


def models(loaded: LoadedSpec) -> Outcome:
    """The release tags, newest first: tag, date, commit, primary metric."""

    repo = open_repo(loaded.root)
    assert repo is not None
    prefix = loaded.spec.ci.tag_prefix
    rows: list[dict[str, Any]] = []
    for t in repo.tags:
        name = t.name
        if not name.startswith(prefix) or not SEMVER.fullmatch(name[len(prefix):]):
            continue
        try:
            lin = lineage_at(loaded, name)
        except MlspecError:
            lin = None
        commit = str(t.commit.hexsha)
        date = (lin.tag or {}).get("date") if lin else ""
        date = date or (lin.date if lin else t.commit.committed_datetime.isoformat())
        tag_obj = t.tag
        stamp = tag_obj.tagged_date if tag_obj is not None else t.commit.committed_date
        primary = lin.primary if lin else None
        rows.append({"tag": name, "version": name[len(prefix):], "date": date, "commit": commit,
                     "primary_metric": primary,
                     "value": lin.metrics.get(primary) if lin and primary else None,
                     "metrics": lin.metrics if lin else {},
                     "image": lin.image if lin else None, "has_lock": lin is not None,
                     "pins": lin.pins.to_data() if lin and lin.pins else None,
                     "pins_error": [d.render() for d in lin.pins_error] if lin else [],
                     "_when": stamp})
    rows.sort(key=lambda r: (r["_when"], version_key(str(r["version"]))), reverse=True)
    for r in rows:
        del r["_when"]
    if not rows:
        return Outcome(text=f"no releases yet: `mlspec release 1.0.0` creates {prefix}1.0.0",
                       data=[])
    head = ["tag", "date", "commit", "primary metric"]
    body = [[r["tag"], r["date"], r["commit"][:12],
             (f"{r['primary_metric']} {num(r['value'])}" if r["value"] is not None
              else "no mlspec.lock" if not r["has_lock"] else "—")] for r in rows]
    if any(r["pins"] or r["pins_error"] for r in rows):
        head.append("pinned runs")
        for row, r in zip(body, rows, strict=True):
            row.append(_pins_cell(r))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
             for row in [head, *body]]
    return Outcome(text="\n".join(lines), data=rows)
