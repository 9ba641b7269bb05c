"""Lineage: everything a model came from — commit, spec hash, data and artifact hashes, params,
metrics, environment, and the image digest when a build recorded one.

Built from git alone (the spec and mlspec.lock at a ref), so it works for any tag or commit,
and from the working tree for the PR report. Rendered as JSON, text, or the model card.
"""

from __future__ import annotations

import functools
import json
import posixpath
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.gitops import pins as pinning
from mlspec.gitops.gitrefs import (
    SEMVER,
    git_error,
    lock_at,
    named_ref,
    open_repo,
    read_at,
    repo_relpath,
    resolve,
)
from mlspec.spec.loader import STAGE_KEYS, hash_spec_files
from mlspec.spec.yamlsafe import parse_yaml

if TYPE_CHECKING:
    from git import Repo

    from mlspec.run.lock import Lock
    from mlspec.spec.loader import LoadedSpec

NOTES_REF = "refs/notes/mlspec"  # where `mlspec build --push` may record the pushed image
ROLLBACKS = "rollback/"  # `mlspec rollback` records tag rollback/<release tag>/<n>
BUILD_RECORD = layout.BUILD_RECORD


NOTES_START, NOTES_END = "<!-- release-notes -->", "<!-- /release-notes -->"


def release_notes(tag_message: str) -> str | None:
    """The --message a release was tagged with, read back from its tag's model card."""
    start, end = tag_message.find(NOTES_START), tag_message.find(NOTES_END)
    if start < 0 or end < start:
        return None
    return tag_message[start + len(NOTES_START):end].strip() or None


@dataclass
class StepLineage:
    name: str
    stage: str  # data | model | '' (a step the spec at that ref no longer declares)
    command: str
    key: str
    deps: dict[str, str]
    outs: dict[str, str]
    params: dict[str, Any]
    metrics: dict[str, float]


@dataclass
class Lineage:
    project: str
    ref: str
    commit: str | None
    dirty: bool
    author: str
    date: str  # the commit's date (ISO 8601), data from git
    subject: str
    spec_hash: str
    hypothesis: str
    primary: str | None
    env: dict[str, str]
    steps: list[StepLineage]
    metrics: dict[str, float]
    tag: dict[str, str] | None = None  # name, tagger, date for an annotated tag
    image: dict[str, str] | None = None  # name, digest, ... when a build recorded one
    goals: dict[str, str] = field(default_factory=dict)
    path: str = ""  # the project's directory in the repository ('' at the top)
    rollbacks: list[dict[str, str]] = field(default_factory=list)  # record, date: redeploys
    pins: pinning.Pins | None = None  # the step runs the release tag pins (mlspec.gitops.pins)
    pins_error: list[Diagnostic] = field(default_factory=list)  # a tag whose pins are refused

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["pins"] = self.pins.to_data() if self.pins else None
        data["pins_error"] = [d.render() for d in self.pins_error]
        data["steps"] = {s.name: {k: v for k, v in asdict(s).items() if k != "name"}
                         for s in self.steps}
        data["params"] = {s.name: s.params for s in self.steps if s.params}
        data.pop("goals")
        return data

    def data_hashes(self) -> dict[str, str]:
        """Outputs of data steps, plus inputs no step produces that are not code."""
        produced = {p for s in self.steps for p in s.outs}
        out: dict[str, str] = {}
        for s in self.steps:
            if s.stage == "data":
                out.update(s.outs)
            for dep, h in s.deps.items():
                if dep not in produced and not _is_code(dep):
                    out[dep] = h
        return dict(sorted(out.items()))

    def artifacts(self) -> dict[str, str]:
        """Outputs of model steps (models, metrics files)."""
        out: dict[str, str] = {}
        for s in self.steps:
            if s.stage != "data":
                out.update(s.outs)
        return dict(sorted(out.items()))


def _is_code(path: str) -> bool:
    """Scripts and their configuration: inputs of a step, but not data."""
    name = path.rsplit("/", 1)[-1]
    return (path.endswith((".py", ".sh", ".r", ".R", ".ipynb", ".toml", ".cfg", ".ini"))
            or (name.startswith("requirements") and name.endswith(".txt")))


# -- the spec at a ref ----------------------------------------------------------------------
@dataclass
class SpecFacts:
    spec_hash: str
    project: str
    hypothesis: str
    primary: str | None
    goals: dict[str, str]
    stages: dict[str, str]  # step -> stage


@functools.lru_cache(maxsize=256)
def _yaml(data: bytes) -> Any:
    """Parsed with the spec's hardened reader (no aliases, tags or bombs from another
    branch), cached by content: many tags share a spec (callers only read it). {} when the
    file is not a spec this can read."""

    try:
        return parse_yaml(data.decode("utf-8"), "spec").data
    except (MlspecError, UnicodeDecodeError):
        return {}


def spec_facts(files: dict[str, bytes], root_name: str) -> SpecFacts:
    """Facts from raw spec files ({relpath: bytes}); the hash is the loader's spec_hash."""

    root = _yaml(files[root_name]) or {}
    if not isinstance(root, dict):
        root = {}
    section = {k: root.get(k) for k in STAGE_KEYS}
    for k, v in list(section.items()):
        if isinstance(v, str) and posixpath.normpath(v) in files:
            section[k] = _yaml(files[posixpath.normpath(v)]) or {}
    design = section.get("design") or {}
    metrics = design.get("metrics") or {}
    goals = {str(n): str((m or {}).get("goal", "")) for n, m in metrics.items()}
    primary = next((str(n) for n, m in metrics.items() if (m or {}).get("primary")),
                   next(iter(goals), None))
    stages = {str(n): stage for stage in ("data", "model")
              for n in ((section.get(stage) or {}).get("steps") or {})}
    project = str((root.get("project") or {}).get("name", ""))
    return SpecFacts("sha256:" + hash_spec_files(files), project,
                     str(design.get("hypothesis", "")), primary, goals, stages)


def spec_files_at(repo: Repo, ref: str, rel_root: str, root_name: str) -> dict[str, bytes]:
    """The spec and its stage files as committed at ref ({} when there is no spec)."""

    def at(rel: str) -> bytes | None:
        text = read_at(repo, ref, f"{rel_root}/{rel}" if rel_root else rel)
        return None if text is None else text.encode("utf-8")

    top = at(root_name)
    if top is None:
        return {}
    files = {root_name: top}
    data = _yaml(top) or {}
    for k in STAGE_KEYS:
        v = data.get(k) if isinstance(data, dict) else None
        if isinstance(v, str):
            body = at(posixpath.normpath(v))
            if body is not None:
                files[posixpath.normpath(v)] = body
    return files


# -- building --------------------------------------------------------------------------------
def _steps(lock: Lock, stages: dict[str, str]) -> list[StepLineage]:
    order = [n for n in stages if n in lock.steps] + sorted(set(lock.steps) - set(stages))
    return [StepLineage(n, stages.get(n, ""), s.command, s.key, dict(s.deps), dict(s.outs),
                        dict(s.params), dict(s.metrics)) for n, s in
            ((n, lock.steps[n]) for n in order)]


def _commit_facts(repo: Repo, ref: str) -> tuple[str, str, str, str]:
    c = repo.commit(ref)
    date = c.committed_datetime.isoformat()
    subject = str(c.message).split("\n", 1)[0]
    return str(c.hexsha), f"{c.author.name} <{c.author.email}>", date, subject


def _tag_facts(repo: Repo, ref: str) -> dict[str, str] | None:
    import git

    try:
        tag = repo.tags[ref].tag
    except (IndexError, ValueError, git.GitCommandError):
        return None
    if tag is None:
        return {"name": ref, "tagger": "", "date": "", "annotated": "false"}
    from datetime import datetime, timedelta, timezone

    tz = timezone(timedelta(seconds=-tag.tagger_tz_offset))

    facts = {"name": ref, "tagger": f"{tag.tagger.name} <{tag.tagger.email}>",
             "date": datetime.fromtimestamp(tag.tagged_date, tz).isoformat(), "annotated": "true"}
    notes = release_notes(str(tag.message))
    if notes:
        facts["notes"] = notes
    return facts


def image_record(repo: Repo, root: Path, commit: str | None) -> dict[str, str] | None:
    """The image a build recorded for this commit: a git note, or the local build record."""
    import git

    if commit is None:
        return None
    try:
        if not (Path(repo.git_dir) / NOTES_REF).exists() and NOTES_REF not in _packed(repo):
            raise ValueError("no notes")
        note = repo.git.notes("--ref", NOTES_REF, "show", commit)
        data = json.loads(note)
        if isinstance(data, dict) and data.get("digest"):
            return {str(k): str(v) for k, v in data.items() if isinstance(v, str | int)}
    except (git.GitCommandError, ValueError):
        pass
    return build_record(root, commit)


def build_record(root: Path, commit: str) -> dict[str, str] | None:
    """The pushed image `mlspec build --push` recorded in .mlspec/build.json for this commit.

    Format (mlspec.image.build): {"version": 1, "images": {"serve": {"image", "revision", "digest",
    "repo_digest", "dirty", ...}, "train": {...}}}; the serving image is preferred. An image
    built from a dirty tree or never pushed (no digest) is not lineage.
    """
    try:
        data = json.loads((root / BUILD_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, dict):
        return None
    for which in ("serve", "train"):
        rec = images.get(which)
        if (isinstance(rec, dict) and rec.get("digest") and rec.get("revision") == commit
                and not rec.get("dirty")):
            out = {"which": which, "image": str(rec.get("image", "")),
                   "digest": str(rec["digest"])}
            if rec.get("repo_digest"):
                out["repo_digest"] = str(rec["repo_digest"])
            return out
    return None


def rollbacks_of(repo: Repo, tag: str) -> list[dict[str, str]]:
    """The `mlspec rollback` records of a release tag, oldest first."""
    out = str(repo.git.for_each_ref("--sort=creatordate", "--format=%(refname:strip=2) "
                                    "%(creatordate:iso-strict)", f"refs/tags/{ROLLBACKS}{tag}"))
    return [{"record": name, "date": date} for name, _, date in
            (line.partition(" ") for line in out.splitlines())]


def _packed(repo: Repo) -> str:
    try:
        return (Path(repo.git_dir) / "packed-refs").read_text(encoding="utf-8")
    except OSError:
        return ""


def lineage_at(loaded: LoadedSpec, ref: str) -> Lineage:
    """The lineage of a tag or commit, read from git."""

    repo = open_repo(loaded.root)
    assert repo is not None
    ref = named_ref(repo, ref, loaded.spec.ci.tag_prefix)
    sha = resolve(repo, ref)
    if sha is None:
        if SEMVER.fullmatch(ref):
            raise git_error(f"no release {ref}: no tag {loaded.spec.ci.tag_prefix}{ref}",
                            "`mlspec models` lists the releases; in a shallow clone fetch the "
                            "tags first: `git fetch --tags`", rule="git.ref")
        raise git_error(f"unknown git ref '{ref}'", "name a release version or tag (see "
                        "`mlspec models`), a branch or a commit; in a shallow clone fetch it "
                        "first: `git fetch --tags`", rule="git.ref")
    rel = repo_relpath(repo, loaded.root)
    lock = lock_at(loaded.root, sha, repo)
    if lock is None:
        raise git_error(f"{ref} has no committed mlspec.lock",
                        "run `mlspec run` and commit mlspec.lock", rule="lock.missing")
    facts = spec_facts(spec_files_at(repo, sha, rel, loaded.path.name) or
                       {loaded.path.name: b"{}"}, loaded.path.name)
    sha, author, date, subject = _commit_facts(repo, sha)
    tag = _tag_facts(repo, ref)
    lin = Lineage(facts.project or loaded.spec.project.name, ref, sha, False, author, date,
                   subject, facts.spec_hash, facts.hypothesis, facts.primary, dict(lock.env),
                   _steps(lock, facts.stages), lock.metrics(), tag,
                   image_record(repo, loaded.root, sha), facts.goals, rel)
    if tag is not None:
        lin.rollbacks = rollbacks_of(repo, ref)
        try:
            lin.pins = pinning.tag_pins(repo, ref)
        except MlspecError as err:
            lin.pins_error = list(err.diagnostics)
    return lin


def lineage_worktree(loaded: LoadedSpec, lock: Lock) -> Lineage:
    """The lineage of the working tree: HEAD, plus whether the project has uncommitted edits."""

    spec = loaded.spec
    design = spec.design
    goals: dict[str, str] = {n: m.goal for n, m in design.metrics.items()} if design else {}
    stages = {n: st for n, (st, _) in spec.steps().items()}
    sha = author = date = subject = ""
    dirty = False
    repo = open_repo(loaded.root, required=False)
    image = None
    rel = ""
    if repo is not None and resolve(repo, "HEAD"):
        sha, author, date, subject = _commit_facts(repo, "HEAD")
        rel = repo_relpath(repo, loaded.root)
        dirty = bool(repo.git.status("--porcelain", "--", rel or "."))
        image = image_record(repo, loaded.root, sha)
    return Lineage(spec.project.name, "HEAD", sha or None, dirty, author, date, subject,
                   "sha256:" + loaded.spec_hash, design.hypothesis if design else "",
                   design.primary if design else None, dict(lock.env), _steps(lock, stages),
                   lock.metrics(), None, image, goals, rel)
