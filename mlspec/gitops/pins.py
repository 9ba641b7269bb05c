"""The step runs a release pins: the machine-readable section of a release tag's model card.

`mlspec release` with a remote writes, at the end of the tag message, an HTML comment (hidden
where the card is rendered as markdown) that lists, for every step of the lock, its step key
and the digest of the OCI manifest of its run as the remote stores it:

    <!-- mlspec:pinned-runs v1
    remote oci://registry.example.com/team/iris
    run prepare sha256:<step key hex> sha256:<manifest digest hex>
    run train sha256:<…> sha256:<…>
    -->

One line per fact, so an error names its line. Tag messages are hostile input (anyone who can
push a tag writes one): the parser accepts exactly this shape — one section, known words,
step names as the spec allows them, lowercase sha256 digests, each step once, bounded size —
and reports every departure as a diagnostic located at the line of the tag message, never
skipping a line it does not understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlspec.errors import Diagnostic, MlspecError
from mlspec.remote.url import BadRemote
from mlspec.remote.url import parse as parse_remote

if TYPE_CHECKING:
    from git import Repo

    from mlspec.run.lock import Lock
    from mlspec.spec.loader import LoadedSpec

START = "<!-- mlspec:pinned-runs"
VERSION = "v1"
END = "-->"
MAX_LINES = 10_000
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
STEP = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
RULE = "release.pins"


@dataclass(frozen=True)
class PinnedRun:
    key: str  # the step key (the run's tag in the remote is derived from it)
    digest: str  # sha256 of the manifest's bytes as the remote stores them
    line: int = field(default=0, compare=False)  # where the tag message says so


@dataclass
class Pins:
    remote: str
    runs: dict[str, PinnedRun]

    def to_data(self) -> dict[str, object]:
        return {"remote": self.remote,
                "runs": {s: {"key": r.key, "digest": r.digest} for s, r in self.runs.items()}}


def render(pins: Pins) -> str:
    """The machine-readable section (its values were checked when they were made)."""
    lines = [f"{START} {VERSION}", f"remote {pins.remote}"]
    lines += [f"run {s} {r.key} {r.digest}" for s, r in pins.runs.items()]
    return "\n".join([*lines, END])


def mentions(text: str) -> bool:
    """Whether a text (release notes) holds the section's marker: it would forge one."""
    return START in text


def parse(message: str, where: str) -> Pins | None:
    """The pinned runs of a tag message; None when it has no section. MlspecError lists every
    problem, located at `where` (e.g. `refs/tags/v1.2.0`) and the message's line."""
    lines = message.split("\n")
    starts = [i for i, line in enumerate(lines) if START in line]
    if not starts:
        return None

    def bad(i: int, what: str, hint: str | None = None) -> Diagnostic:
        return Diagnostic(where, i + 1, 1, what, RULE, hint or
                          "the tag message was edited, or not made by `mlspec release`: "
                          "make a new release")

    errors: list[Diagnostic] = []
    if len(starts) > 1:
        raise MlspecError([bad(i, "a second pinned-runs section: the tag is ambiguous")
                           for i in starts[1:]])
    first = starts[0]
    if lines[first] != f"{START} {VERSION}":
        head = lines[first][len(START):].strip()[:20]
        raise MlspecError([bad(first, f"pinned-runs section of unknown version {head!r}",
                               "a newer mlspec wrote it: upgrade mlspec")])
    remote: str | None = None
    runs: dict[str, PinnedRun] = {}
    end = None
    for i in range(first + 1, min(len(lines), first + 2 + MAX_LINES)):
        words = lines[i].split(" ")
        if lines[i] == END:
            end = i
            break
        if words[0] == "remote" and len(words) == 2 and remote is None and not runs:
            remote = words[1]
            try:
                parse_remote(remote)
            except BadRemote as exc:
                errors.append(bad(i, f"{str(exc)[:200]!r}: not a remote"))
            continue
        if words[0] != "run" or len(words) != 4:
            errors.append(bad(i, f"unexpected line {lines[i][:60]!r} in the pinned-runs "
                              "section (expected 'remote URL' first, then 'run STEP KEY "
                              "DIGEST')"))
            continue
        step, key, digest = words[1:]
        problems = [w for w, ok in (("step name", STEP.fullmatch(step)),
                                    ("step key", DIGEST.fullmatch(key)),
                                    ("manifest digest", DIGEST.fullmatch(digest))) if not ok]
        if problems:
            errors.append(bad(i, f"{' and '.join(problems)} malformed in "
                              f"{lines[i][:100]!r} (a step name is [a-z0-9_-], a key "
                              "or digest 'sha256:' and 64 lowercase hex digits)"))
        elif step in runs:
            errors.append(bad(i, f"step '{step}' is pinned twice (also on line "
                              f"{runs[step].line})"))
        else:
            runs[step] = PinnedRun(key, digest, i + 1)
    if end is None:
        errors.append(bad(first, "the pinned-runs section has no end ('-->' on a line alone)"
                          if len(lines) - first <= MAX_LINES else
                          f"the pinned-runs section is longer than {MAX_LINES} lines"))
    elif remote is None:
        errors.append(bad(first, "the pinned-runs section names no remote"))
    if errors:
        raise MlspecError(errors)
    assert remote is not None
    return Pins(remote, runs)


def check_against(pins: Pins, lock: Lock, steps: list[str], where: str, tag: str) -> None:
    """Every step of the lock at the tag (`steps`: those the spec declares) pinned, with the
    key that lock records; nothing else pinned."""
    errors = []
    for name, run in pins.runs.items():
        entry = lock.steps.get(name)
        if entry is None or name not in steps:
            errors.append(Diagnostic(where, run.line, 1, f"step '{name}' is pinned, but "
                                     f"mlspec.lock at {tag} has no such step", RULE))
        elif entry.key != run.key:
            errors.append(Diagnostic(where, run.line, 1, f"step '{name}' is pinned with key "
                                     f"{run.key[:19]}…, but mlspec.lock at {tag} records "
                                     f"{entry.key[:19]}…", RULE))
    missing = [s for s in steps if s in lock.steps and s not in pins.runs]
    if missing:
        first = min((r.line for r in pins.runs.values()), default=0)
        errors.append(Diagnostic(where, max(first - 1, 0), 1, f"steps of mlspec.lock at {tag} "
                                 f"are not pinned: {', '.join(missing)}", RULE))
    if errors:
        raise MlspecError(errors)


def tag_message(repo: Repo, tag: str) -> str:
    """The message of an annotated tag as git stores it ('' for a lightweight tag)."""
    import git

    try:  # fails on a lightweight tag (a commit, not a tag object)
        raw = repo.git.cat_file("tag", f"refs/tags/{tag}", strip_newline_in_stdout=False)
    except git.GitCommandError:
        return ""
    return str(raw).partition("\n\n")[2]


def tag_pins(repo: Repo, tag: str) -> Pins | None:
    """The runs a release tag pins (None: it pins none); MlspecError when its section is
    refused, located at the tag message's line."""
    return parse(tag_message(repo, tag), f"refs/tags/{tag}")


def release_pins(loaded: LoadedSpec, ref: str) -> tuple[str, Pins, Lock]:
    """For `mlspec pull --release REF`: the tag's name, its pinned runs (checked against the
    spec here and the lock at the tag) and that lock. MlspecError (exit 2) for a ref that is
    not a release tag, a refused section, or a tag that pins nothing."""
    from mlspec.gitops.gitrefs import lock_at, named_ref, open_repo, resolve

    repo = open_repo(loaded.root)
    assert repo is not None
    tag = named_ref(repo, ref, loaded.spec.ci.tag_prefix)
    if resolve(repo, f"refs/tags/{tag}") is None:
        raise MlspecError([Diagnostic.nowhere(
            f"no release tag '{ref[:100]}'", "git.ref",
            "`mlspec models` lists the releases; in a shallow clone: `git fetch --tags`")])
    pins = tag_pins(repo, tag)
    if pins is None:
        raise MlspecError([Diagnostic.nowhere(
            f"{tag} pins no step runs: it was tagged without a remote, or not by "
            "`mlspec release`", "release.unpinned",
            "`mlspec pull` restores runs by step key; `mlspec run` executes the rest")])
    lock = lock_at(loaded.root, f"refs/tags/{tag}", repo)
    if lock is None:
        raise MlspecError([Diagnostic.nowhere(f"{tag} has no committed mlspec.lock",
                                              "lock.missing")])
    # the lock at the tag, not this checkout's spec: a checkout elsewhere is told to check the
    # tag out (mlspec.remote.promote), not that the tag is wrong
    check_against(pins, lock, list(lock.steps), f"refs/tags/{tag}", tag)
    return tag, pins, lock
