"""`mlspec rollback [VERSION]`: redeploy a release's exact image digest.

The target is a release tag (`<ci.tag_prefix><VERSION>`, versions ordered by semver
precedence); no VERSION means the release before the deployed one: the newest release, or,
when a rollback was recorded after it was tagged, the release that rollback redeployed (so
running it again steps back once more). The digest comes from the
release's lineage (`lineage.image_record`: the git note `refs/notes/mlspec`, else the local
build record of `mlspec build --push`); a version never released, or a release with no pushed
digest, is refused (exit 2). The rollback is recorded as the annotated tag
`rollback/<tag>/<n>` on the release's commit (its message says what was redeployed, from
what), which `mlspec lineage <tag>` lists; then `mlspec.gitops.dispatch` triggers the release
pipeline's rollback jobs, or prints the command that does.

In CI the rollback jobs run `mlspec rollback --resolve "$ROLLBACK_TO" --digest
"$ROLLBACK_DIGEST"`: both values are hostile input (a dispatch input / pipeline variable);
the version must name a release tag of the checkout, the digest must be `sha256:` + 64 hex
and, when the checkout's lineage records a digest for that release, equal it. It prints the
`digest=` line the job's later commands read as IMAGE_DIGEST.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlspec.errors import CheckFailed, Diagnostic, MlspecError, Outcome
from mlspec.gitops.gitrefs import SEMVER, open_repo, resolve
from mlspec.gitops.lineage import ROLLBACKS, image_record
from mlspec.gitops.release import parse_version, version_key

if TYPE_CHECKING:
    from git import Repo

    from mlspec.spec.loader import LoadedSpec

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
RECORD_PREFIX = ROLLBACKS  # rollback/<release tag>/<n>


@dataclass(frozen=True)
class Target:
    version: str
    tag: str
    commit: str
    image: str  # the image repository ('' when the record does not name it)
    digest: str
    previous: str | None  # the newest release, rolled back from (None: it is the target)


def _refuse(message: str, rule: str, hint: str | None = None) -> MlspecError:
    return MlspecError([Diagnostic.nowhere(message, rule, hint)])


def releases(loaded: LoadedSpec, repo: Repo) -> list[tuple[str, str]]:
    """(version, tag) of every release tag, oldest version first."""
    prefix = loaded.spec.ci.tag_prefix
    out = str(repo.git.for_each_ref("--format=%(refname:strip=2)", "refs/tags"))
    found = [(name[len(prefix):], name) for name in out.splitlines()
             if name.startswith(prefix) and SEMVER.fullmatch(name[len(prefix):])]
    return sorted(found, key=lambda vt: version_key(vt[0]))


def find_target(loaded: LoadedSpec, version: str | None, digest: str | None = None) -> Target:
    """The release to redeploy and its digest; refuses (exit 2) an unknown version, a release
    with no pushed digest, a malformed digest or one that contradicts the lineage."""
    repo = open_repo(loaded.root)
    assert repo is not None
    rels = releases(loaded, repo)
    shown = ", ".join(v for v, _ in rels) or "none"
    previous = None
    if version is None:
        current, why = deployed_release(repo, rels)
        older = [vt for vt in rels if version_key(vt[0]) < version_key(current[0])]
        if not older:
            raise _refuse(f"nothing to roll back to: {current[1]} is deployed ({why}) and no "
                          f"release is older (releases: {shown})", "rollback.none",
                          "name the version to redeploy: mlspec rollback 1.0.0")
        v, tag = older[-1]
        previous = current[1]
    else:
        v, tag = parse_version(loaded, version)
        if (v, tag) not in rels:
            raise _refuse(f"{v} was never released: there is no tag {tag}", "rollback.unknown",
                          f"released versions: {shown} (`mlspec models`); in a shallow clone "
                          "fetch the tags first: git fetch --tags")
    if previous is None and rels and rels[-1][1] != tag:
        previous = rels[-1][1]
    commit = resolve(repo, f"refs/tags/{tag}^{{commit}}")
    assert commit is not None
    record = image_record(repo, loaded.root, commit) or {}
    recorded = record.get("digest", "")
    if digest is not None and not DIGEST.fullmatch(digest):
        raise _refuse(f"'{digest[:80]}' is not an image digest", "rollback.digest",
                      "give sha256: followed by 64 lowercase hex digits")
    if recorded and not DIGEST.fullmatch(recorded):
        raise _refuse(f"the lineage of {tag} records a malformed digest '{recorded[:80]}'",
                      "rollback.digest", "rebuild and push the image: mlspec build serve --push")
    if digest and recorded and digest != recorded:
        raise _refuse(f"digest {digest} is not the one {tag} released ({recorded})",
                      "rollback.digest", "omit --digest to use the recorded one")
    chosen = recorded or digest
    if not chosen:
        raise _refuse(f"release {tag} has no pushed image digest in its lineage",
                      "rollback.no-image",
                      f"a rollback redeploys an exact image: run `mlspec build serve --push` at "
                      f"{tag} (it records the digest), or fetch the notes that hold it: "
                      "git fetch origin refs/notes/mlspec:refs/notes/mlspec")
    image = record.get("image", "") or (loaded.spec.inference.image.name
                                        if loaded.spec.inference else "")
    return Target(v, tag, commit, image, chosen, previous)


def deployed_release(repo: Repo, rels: list[tuple[str, str]]) -> tuple[tuple[str, str], str]:
    """The release taken as deployed, and why: the newest release, unless a rollback was
    recorded after it was tagged (then the release that rollback redeployed), so that
    `mlspec rollback` run again steps back once more."""
    if not rels:
        raise _refuse("nothing to roll back to: no release yet", "rollback.none",
                      "`mlspec release 1.0.0` creates the first")
    out = str(repo.git.for_each_ref("--sort=-creatordate", "--count=1",
                                    "--format=%(refname:strip=2) %(creatordate:unix)",
                                    f"refs/tags/{RECORD_PREFIX.rstrip('/')}"))
    newest = rels[-1]
    tagged = str(repo.git.for_each_ref("--format=%(creatordate:unix)", f"refs/tags/{newest[1]}"))
    name, _, when = out.partition(" ")
    target = name[len(RECORD_PREFIX):].rsplit("/", 1)[0] if name else ""
    found = next((vt for vt in rels if vt[1] == target), None)
    if found and when.strip().isdigit() and tagged.strip().isdigit() and (
            int(when) > int(tagged)):
        return found, f"rolled back by {name}"
    return newest, "the newest release"


def _records(repo: Repo, tag: str) -> list[str]:
    out = str(repo.git.for_each_ref("--format=%(refname:strip=2)",
                                    f"refs/tags/{RECORD_PREFIX}{tag}"))
    return out.splitlines()


def record_rollback(loaded: LoadedSpec, target: Target) -> str:
    """The annotated tag `rollback/<tag>/<n>` on the release's commit; returns its name."""
    import git

    repo = open_repo(loaded.root)
    assert repo is not None
    numbers = [int(n.rsplit("/", 1)[1]) for n in _records(repo, target.tag)
               if n.rsplit("/", 1)[1].isdigit()]
    name = f"{RECORD_PREFIX}{target.tag}/{max(numbers, default=0) + 1}"
    message = (f"mlspec rollback to {target.tag}\n\nversion: {target.version}\n"
               f"image: {target.image}\ndigest: {target.digest}\n"
               f"from: {target.previous or '(not given)'}\n")
    try:
        repo.git.tag("-a", "--cleanup=verbatim", "-m", message, name, target.commit)
    except git.GitCommandError as err:
        detail = str(err.stderr or "").strip().removeprefix("stderr:").strip(" '")
        raise CheckFailed(f"git could not record the rollback as tag {name}: {detail}") from None
    return name


def rollback(loaded: LoadedSpec, version: str | None, *, digest: str | None = None,
             resolve_only: bool = False, dry_run: bool = False,
             ci: str | None = None) -> Outcome:
    from mlspec.gitops import dispatch

    if resolve_only and version is None:
        raise _refuse("--resolve needs the VERSION", "rollback.usage",
                      'in CI: mlspec rollback --resolve "$ROLLBACK_TO" --digest "$ROLLBACK_DIGEST"')
    target = find_target(loaded, version, digest)
    data: dict[str, Any] = {"version": target.version, "tag": target.tag,
                            "commit": target.commit, "image": target.image,
                            "digest": target.digest, "from": target.previous}
    if resolve_only:  # `name=value` lines for the job's outputs ($MLSPEC_OUTPUT)
        return Outcome(text=f"digest={target.digest}\nversion={target.version}", data=data)
    ci_name = dispatch.choose(loaded, ci)
    action = dispatch.plan(loaded, ci_name, target.version, target.digest)
    what = (f"roll back to {target.tag} ({target.commit[:12]}): "
            f"{target.image}@{target.digest}"
            + (f", from {target.previous}" if target.previous else ""))
    data["ci"] = ci_name
    if dry_run:
        data.update(recorded=None, triggered=False, command=action.command)
        return Outcome(text=f"would {what}\nwould record tag {RECORD_PREFIX}{target.tag}/<n>\n"
                       f"would run: {action.command}", data=data)
    name = record_rollback(loaded, target)
    data["recorded"] = name
    text = f"{what}\nrecorded as tag {name} (push it: git push origin {name})"
    if action.request is None:
        data.update(triggered=False, command=action.command)
        return Outcome(text=f"{text}\nno {action.token_var} in the environment: run\n  "
                       f"{action.command}", data=data)
    dispatch.send(action)
    data.update(triggered=True, command=action.command)
    return Outcome(text=f"{text}\ntriggered the {ci_name} release pipeline's rollback jobs",
                   data=data)
