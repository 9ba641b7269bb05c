"""Git access for GitOps: find the base ref of a change, read the lock at any ref.

GitPython is imported inside the functions (it is slow to import and `compile` never needs it).
Every failure is a Diagnostic that says what to do (fetch the base, pass a ref), never a
traceback: CI clones are shallow and often on a detached HEAD.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.run.lock import Lock
from mlspec.spec.loader import load_spec

if TYPE_CHECKING:
    from git import Repo

    from mlspec.run.lock import Lock

LOCK_NAME = layout.LOCK


def git_error(message: str, hint: str | None = None, rule: str = "git.base") -> MlspecError:
    return MlspecError([Diagnostic.nowhere(message, rule, hint)])


def open_repo(root: Path, required: bool = True) -> Repo | None:
    """The git repository that holds `root` (the spec's directory)."""
    try:
        import git
    except ImportError as err:  # pragma: no cover - GitPython is a dependency
        raise git_error(f"GitPython cannot be imported: {err}", rule="git.missing") from None
    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        if required:
            raise git_error(f"{root} is not inside a git repository",
                            "run `git init` and commit the spec; GitOps commands read git history",
                            rule="git.no-repo") from None
        return None
    except git.GitCommandNotFound:
        raise git_error("the git executable is not installed", rule="git.missing") from None


def repo_relpath(repo: Repo, root: Path) -> str:
    """`root` relative to the work tree, '' at the top ('examples/iris' in a monorepo)."""
    top = Path(repo.working_tree_dir or ".").resolve()
    rel = Path(root).resolve().relative_to(top).as_posix()
    return "" if rel == "." else rel


def resolve(repo: Repo, ref: str) -> str | None:
    """The sha of the commit a ref names, or None when it does not exist here (a shallow clone
    can name a parent it lacks: that is None too)."""
    import git

    if not ref or ref.startswith("-"):
        return None
    try:
        out = repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except git.GitCommandError:
        return None
    sha = str(out).strip()
    return sha or None  # peeling to ^{commit} read the object, so it is in the clone


# a release version: MAJOR.MINOR.PATCH[-PRE][+BUILD]; its tag is ci.tag_prefix + version
SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
                    r"(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def named_ref(repo: Repo, ref: str, tag_prefix: str | None = None,
              root: Path | None = None) -> str:
    """The ref as git knows it: `ref` itself when it resolves; a release version (`0.1.0`)
    becomes its release tag (`v0.1.0`, the spec's ci.tag_prefix), as `mlspec release 0.1.0`
    named it. Otherwise `ref` unchanged (the caller reports it as unknown)."""
    if resolve(repo, ref) is not None or not SEMVER.fullmatch(ref):
        return ref
    if tag_prefix is None:
        tag_prefix = _tag_prefix(root) if root is not None else "v"
    tag = f"{tag_prefix}{ref}"
    return tag if resolve(repo, f"refs/tags/{tag}") is not None else ref


def _tag_prefix(root: Path) -> str:
    """spec.ci.tag_prefix of the spec at root, 'v' when it cannot be read."""
    try:

        return str(load_spec(Path(root) / layout.SPEC).spec.ci.tag_prefix)
    except Exception:
        return "v"


def _present(repo: Repo, sha: str) -> bool:
    """Whether a commit object is in the clone (a shallow clone names parents it lacks)."""
    import git

    try:
        repo.git.cat_file("-e", f"{sha}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def is_shallow(repo: Repo) -> bool:
    return (Path(repo.git_dir) / "shallow").exists()


def _fetch_hint(ref: str) -> str:
    if re.fullmatch(r"[0-9a-f]{7,40}", ref) or any(c in ref for c in "~^@:"):
        return ("it may be outside a shallow clone: fetch more history, e.g. "
                "`git fetch --deepen=50` or `git fetch --unshallow`")
    return (f"fetch it first, e.g. `git fetch --depth=50 origin {ref}` (actions/checkout: "
            f"fetch-depth: 0; GitLab: GIT_DEPTH: 0), or name the base with --diff/--base REF")


def _default_branch(root: Path) -> str:
    """spec.ci.default_branch of the spec at root, 'main' when it cannot be read."""
    try:

        return str(load_spec(Path(root) / layout.SPEC).spec.ci.default_branch)
    except Exception:
        return "main"


def _first_existing(repo: Repo, names: list[str]) -> str | None:
    for name in names:
        if resolve(repo, name) is not None:
            return name
    return None


def _ci_branch() -> str:
    """The branch a CI push pipeline runs for (GitLab or GitHub), '' when not one."""
    ref = os.environ.get("GITHUB_REF", "")
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    return os.environ.get("CI_COMMIT_BRANCH", "")


def _on_branch(repo: Repo, branch: str) -> bool:
    """Whether HEAD is the default branch: by name; detached (CI), by CI variables or commit."""
    if not repo.head.is_detached:
        return bool(repo.active_branch.name == branch)
    env = os.environ
    if env.get("GITHUB_BASE_REF") or env.get("CI_MERGE_REQUEST_IID"):
        return False
    ci_branch = _ci_branch()
    if ci_branch:
        return ci_branch == branch
    head = resolve(repo, "HEAD")
    return head is not None and head in (resolve(repo, f"origin/{branch}"), resolve(repo, branch))


@dataclass(frozen=True)
class Base:
    """A base ref and how it was chosen (shown beside the comparison)."""

    ref: str
    how: str


def _ci_base(repo: Repo) -> Base | None:
    """A pull/merge request's target from the CI environment, or None outside one."""
    env = os.environ
    for var in ("GITHUB_BASE_REF", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"):
        branch = env.get(var, "").strip()
        if not branch:
            continue
        what = "pull request" if var.startswith("GITHUB") else "merge request"
        found = _first_existing(repo, [f"origin/{branch}", branch])
        if found:
            return Base(found, f"the {what}'s target branch")
        sha = env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA", "").strip()
        if var.startswith("CI_") and sha and resolve(repo, sha):
            return Base(sha, "the merge request's diff base")
        raise git_error(f"the request's target branch '{branch}' ({var}) is not in this clone",
                        _fetch_hint(branch))
    sha = env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA", "").strip()
    if sha:
        if resolve(repo, sha):
            return Base(sha, "the merge request's diff base")
        raise git_error(f"the merge request's base commit {sha[:12]} is not in this clone",
                        "fetch more history, e.g. `git fetch --deepen=50` (GitLab: GIT_DEPTH: 0)")
    return None


# the environment that makes the base a CI question (find_base's _ci_base and _on_branch)
_CI_VARS = ("GITHUB_BASE_REF", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
            "CI_MERGE_REQUEST_DIFF_BASE_SHA", "CI_MERGE_REQUEST_IID", "GITHUB_REF",
            "CI_COMMIT_BRANCH")


def previous_lock(root: Path, default_branch: str) -> tuple[str | None, str | None] | None:
    """find_base_ref + the lock's text at that ref, for the everyday case only: no CI
    variables, HEAD on the default branch, and HEAD a first commit or its parent in the clone.
    Then the base is the parent (none for a first commit) and two `git` processes say so
    (GitPython costs a 60-100 ms import and more processes). Returns (parent sha, lock text or
    None when the parent has no lock), (None, None) for a first commit, or None in every other
    case: the caller then takes the general path, which decides the same way.
    """
    import subprocess

    if any(os.environ.get(v) for v in _CI_VARS):
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "--show-prefix", "--symbolic-full-name",
                               "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    except OSError:
        return None
    lines = head.stdout.split("\n")
    if head.returncode != 0 or len(lines) < 2 or lines[1] != f"refs/heads/{default_branch}":
        return None
    path = f"{lines[0]}{LOCK_NAME}"
    try:  # HEAD, its parent, the lock in it; --batch answers "<name> missing" for none
        show = subprocess.run(
            ["git", "cat-file", "--batch"], cwd=root, capture_output=True, check=False,
            input=f"HEAD^{{commit}}\nHEAD^1^{{commit}}\nHEAD^1:{path}\n".encode())
    except OSError:
        return None
    objects = _batch_objects(show.stdout) if show.returncode == 0 else []
    if len(objects) != 3 or objects[0] is None or objects[0][1] != b"commit":
        return None
    if not any(line.startswith(b"parent ") for line in objects[0][2].split(b"\n\n")[0]
               .split(b"\n")):
        return None, None  # a first commit (even in a shallow clone): no baseline
    parent, lock = objects[1], objects[2]
    if parent is None or parent[1] != b"commit":
        return None  # the parent is not fetched: the general path explains
    text = lock[2].decode("utf-8") if lock is not None and lock[1] == b"blob" else None
    return parent[0].decode(), text


def _batch_objects(out: bytes) -> list[tuple[bytes, bytes, bytes] | None]:
    """`git cat-file --batch` output: (sha, type, content) per request, None when missing."""
    objects: list[tuple[bytes, bytes, bytes] | None] = []
    while out:
        header, _, out = out.partition(b"\n")
        parts = header.split()
        if len(parts) == 3 and parts[2].isdigit():
            size = int(parts[2])
            objects.append((parts[0], parts[1], out[:size]))
            out = out[size + 1:]
        else:
            objects.append(None)  # "<name> missing" / "<name> ambiguous"
    return objects


def find_base_ref(root: Path, explicit: str | None, default_branch: str | None = None
                  ) -> str | None:
    """The git ref whose lock is the baseline, or None when there is none (a first commit).

    Order: an explicit ref ('auto' means detect); a pull/merge request's target branch from the
    CI environment; on the default branch itself, the previous commit; otherwise the merge-base
    of HEAD with the default branch (origin/<b> first, then <b>).
    """
    base = find_base(root, explicit, default_branch)
    return base.ref if base else None


def find_base(root: Path, explicit: str | None, default_branch: str | None = None
              ) -> Base | None:
    """find_base_ref, with how the base was chosen."""
    repo = open_repo(root, required=explicit not in (None, "auto"))
    if repo is None:
        return None
    if explicit and explicit != "auto":
        explicit = named_ref(repo, explicit, root=root)
        if resolve(repo, explicit) is None:
            raise git_error(f"unknown git ref '{explicit}'",
                            _fetch_hint(explicit.removeprefix("origin/")))
        return Base(explicit, "given")
    ci = _ci_base(repo)
    if ci is not None:
        return ci
    if resolve(repo, "HEAD") is None:
        return None  # no commit yet
    branch = default_branch or _default_branch(root)
    if _on_branch(repo, branch):
        return _parent(repo, f"the previous commit on {branch}")
    target = _first_existing(repo, [f"origin/{branch}", branch])
    if target is None:
        raise git_error(f"the default branch '{branch}' is not in this clone "
                        "(a single-branch or detached checkout, as in CI)", _fetch_hint(branch))
    import git

    try:
        sha = str(repo.git.merge_base("HEAD", target)).strip()
    except git.GitCommandError:
        if is_shallow(repo):
            raise git_error(f"this is a shallow clone: HEAD and {target} share no fetched commit",
                            f"fetch more history: `git fetch --deepen=100 origin {branch}` or "
                            "`git fetch --unshallow`, or name the base with --diff/--base REF"
                            ) from None
        raise git_error(f"HEAD and {target} have no common commit",
                        "name the base with --diff/--base REF") from None
    if repo.head.is_detached and not _ci_branch() and sha == resolve(repo, "HEAD"):
        # A detached commit already on the default branch (a tag pipeline): its parent.
        return _parent(repo, "the previous commit")
    return Base(sha, f"where HEAD branched from {target}")


def _parent(repo: Repo, how: str) -> Base | None:
    head = repo.commit("HEAD")
    if head.parents and _present(repo, head.parents[0].hexsha):
        return Base(str(head.parents[0].hexsha), how)
    if head.parents or is_shallow(repo):
        raise git_error("this is a shallow clone: the commit before HEAD is not fetched",
                        "fetch it: `git fetch --deepen=1` (actions/checkout: fetch-depth: 2),"
                        " or name the base with --diff/--base REF")
    return None  # the first commit has no baseline


def read_at(repo: Repo, ref: str, relpath: str) -> str | None:
    """The text of a file at a ref, or None when the file is not in that commit."""
    sha = ref if re.fullmatch(r"[0-9a-f]{40}", ref) else resolve(repo, ref)
    import git

    try:
        tree = repo.commit(sha).tree if sha else None
    except (ValueError, git.BadName, git.BadObject, git.GitCommandError):
        tree = None
    if tree is None:
        raise git_error(f"unknown git ref '{ref}'", _fetch_hint(ref.removeprefix("origin/")))
    try:
        blob = tree / relpath
    except KeyError:
        return None
    if blob.type != "blob":
        return None
    data: bytes = blob.data_stream.read()
    return data.decode("utf-8")


def lock_at(root: Path, ref: str, repo: Repo | None = None) -> Lock | None:
    """The lock (mlspec.lock beside the spec) as committed at `ref`; None when it has none."""
    repo = repo or open_repo(root)
    assert repo is not None
    rel = repo_relpath(repo, root)
    text = read_at(repo, ref, f"{rel}/{LOCK_NAME}" if rel else LOCK_NAME)
    return None if text is None else lock_from_text(text, ref)


def lock_from_text(text: str, ref: str) -> Lock:
    """A lock read at `ref`; a corrupt one raises, naming the ref."""
    try:
        return _parse_lock(text)
    except MlspecError:

        return Lock.parse(text, file=f"{ref}:{LOCK_NAME}")  # raises, naming the ref


@functools.lru_cache(maxsize=64)
def _parse_lock(text: str) -> Lock:
    """Parsed once per content (tags often share one); callers only read it."""

    return Lock.parse(text)
