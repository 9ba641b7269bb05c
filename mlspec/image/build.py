"""`mlspec build [train|serve] [--push] [--tag T]`: build the generated Dockerfiles through the
Docker Engine API (docker SDK, imported lazily), labelled with lineage, and optionally push.

The build context is the repository (the SDK honours `.dockerignore`); progress streams to
stderr. Tags: `<image>:<commit>` and, when HEAD carries a release tag, `<image>:<version>`.
Lineage enters as build arguments of the generated Dockerfile: commit, source URL, version,
spec hash, lock hash (sha256 of mlspec.lock's bytes, or "none"), and the promoted metrics.

Every build records what it made in `.mlspec/build.json` (see `write_record`), which the
release and `mlspec lineage` read: image id, tags, labels, revision, and after `--push` the
registry digest.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec import layout
from mlspec.compile.driver import render_all
from mlspec.compile.imagefacts import metric_args
from mlspec.errors import CheckFailed, Diagnostic, MlspecError, Outcome
from mlspec.fsutil import write_atomic
from mlspec.gitops.gitrefs import open_repo
from mlspec.run.hashing import sha256_bytes
from mlspec.run.lock import read_lock
from mlspec.spec.ci import registry_host

RECORD = layout.BUILD_RECORD
IMAGES = ("train", "serve")
_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class GitFacts:
    commit: str
    dirty: bool  # tracked files differ from the commit
    version: str | None  # from a release tag on HEAD (prefix stripped), or the CI's tag
    source: str | None  # the repository's web URL, without credentials


def git_facts(root: Path, tag_prefix: str = "v") -> GitFacts | None:
    """Commit, dirtiness, release version and source URL (GitPython, imported here)."""

    try:
        repo = open_repo(root, required=False)
        if repo is None:
            return None
        commit = repo.head.commit.hexsha
    except (MlspecError, ValueError):  # no git executable, or no commit yet
        return None
    dirty = repo.is_dirty(index=True, working_tree=True, untracked_files=False)
    tags = repo.git.tag("--points-at", "HEAD").split()
    ci_tag = os.environ.get("CI_COMMIT_TAG") or (
        os.environ.get("GITHUB_REF_NAME") if os.environ.get("GITHUB_REF_TYPE") == "tag" else None)
    if ci_tag and ci_tag not in tags:
        tags.append(ci_tag)
    versions = sorted((t[len(tag_prefix):] for t in tags
                       if t.startswith(tag_prefix) and re.match(r"^\d", t[len(tag_prefix):])),
                      key=_version_key)
    source = None
    remotes = {r.name: r for r in repo.remotes}
    remote = remotes.get("origin") or next(iter(remotes.values()), None)
    if remote is not None:
        source = web_url(next(iter(remote.urls), ""))
    if not source and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        source = f"{server}/{os.environ['GITHUB_REPOSITORY']}"
    source = source or os.environ.get("CI_PROJECT_URL") or None
    return GitFacts(commit, dirty, versions[-1] if versions else None, source)


def _version_key(v: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.+-]", v))


def web_url(url: str) -> str | None:
    """https form of a remote URL, with any user name or token removed."""
    url = url.strip()
    m = re.match(r"^(?:ssh://)?git@([^:/]+)[:/](.+?)(?:\.git)?/?$", url)
    if m:
        return f"https://{m.group(1)}/{m.group(2)}"
    m = re.match(r"^(https?)://(?:[^@/]*@)?([^/]+)/(.+?)(?:\.git)?/?$", url)
    if m:
        return f"{m.group(1)}://{m.group(2)}/{m.group(3)}"
    return None


def _err(message: str, rule: str, hint: str | None = None, file: str = "") -> MlspecError:
    return MlspecError([Diagnostic(file, 0, 0, message, rule, hint)])


def image_repository(loaded: Any, which: str) -> str:
    spec = loaded.spec
    if spec.inference is None:
        return f"{spec.project.name}-train"
    name = str(spec.inference.image.name)
    return name if which == "serve" else f"{name}-train"


def lock_hash(root: Path) -> str:
    lock = root / layout.LOCK

    return sha256_bytes(lock.read_bytes()) if lock.is_file() else "none"


def metric_values(loaded: Any) -> dict[str, Any]:
    """The latest metrics: from mlspec.lock when it records them, else the steps' files."""
    root: Path = loaded.root
    found: dict[str, Any] = {}
    try:
        lock = read_lock(root)  # the one hardened reader: no aliases, tags or deep nesting
    except MlspecError:  # an unreadable lock: fall back to the metrics files
        lock = None
    if lock is not None:
        found.update(lock.metrics())
    if not found:
        for _stage, step in loaded.spec.steps().values():
            path = root / step.metrics if step.metrics else None
            if path is not None and path.is_file():
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except ValueError:
                    continue
                if isinstance(data, dict):
                    found.update(data)
    return found


def build_args(loaded: Any, facts: GitFacts | None, version: str | None) -> dict[str, str]:

    args = {
        "MLSPEC_REVISION": facts.commit if facts else "unknown",
        "MLSPEC_SOURCE": (facts.source if facts else None) or "unknown",
        "MLSPEC_VERSION": version or "unreleased",
        "MLSPEC_SPEC_HASH": f"sha256:{loaded.spec_hash}" if loaded.spec_hash else "unknown",
        "MLSPEC_LOCK_HASH": lock_hash(loaded.root),
    }
    values = metric_values(loaded)
    for m in metric_args(loaded.spec):
        value = values.get(m["name"])
        args[m["arg"]] = "none" if value is None else str(value)
    return args


def image_tags(repo: str, facts: GitFacts | None, version: str | None,
               extra: list[str]) -> list[str]:
    tags: list[str] = []
    if facts is not None:
        tags.append(f"{repo}:{facts.commit}{'-dirty' if facts.dirty else ''}")
    if version:
        tags.append(f"{repo}:{_TAG_BAD.sub('-', version)}")
    for t in extra:
        last = t.rsplit("/", 1)[-1]
        ref = t if ":" in last else f"{repo}:{t}"
        if not re.fullmatch(r"^[a-z0-9._/:-]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", ref):
            raise _err(f"'{t}' is not a valid image tag", "build.tag",
                       "letters, digits, '.', '_' and '-', e.g. --tag candidate")
        tags.append(ref)
    return list(dict.fromkeys(tags))


def check_dockerfile(loaded: Any, which: str) -> str:
    """The generated Dockerfile's path, after checking it exists and matches the spec."""

    rel = f"docker/{which}.Dockerfile"
    path = loaded.root / rel
    if not path.is_file():
        raise _err(f"{rel} does not exist", "build.dockerfile",
                   "generate it: mlspec compile --target docker")
    expected = render_all(loaded, "docker")[0].get(rel)
    if expected is not None and path.read_text(encoding="utf-8") != expected:
        raise CheckFailed(f"{rel} is out of date with the spec\n"
                          "  hint: regenerate it: mlspec compile --target docker")
    return rel


def base_images(dockerfile: Path) -> list[str]:
    stages: set[str] = set()
    bases: list[str] = []
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            if m.group(1).lower() not in stages:
                bases.append(m.group(1))
            if m.group(2):
                stages.add(m.group(2).lower())
    return bases


def docker_client(timeout: int = 3600) -> Any:
    try:
        import docker
    except ImportError:
        raise _err("the docker SDK is not installed", "build.sdk",
                   "pip install 'docker>=7' (a dependency of mlspec)") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as err:
        raise _err(f"cannot reach the Docker daemon: {_short(err)}", "build.daemon",
                   "start it (dockerd, or Docker Desktop) or point DOCKER_HOST at one") from None


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[-1][:300] if text else type(err).__name__


def ensure_base(client: Any, loaded: Any, ref: str) -> None:
    """Fail early, at the spec line, when the base image is neither local nor pullable."""
    import docker.errors

    try:
        client.api.inspect_image(ref)
        return
    except docker.errors.ImageNotFound:
        pass
    sys.stderr.write(f"pulling base image {ref}\n")
    try:
        for event in client.api.pull(ref, stream=True, decode=True):
            if "error" in event:
                raise docker.errors.APIError(event["error"])
        client.api.inspect_image(ref)
    except docker.errors.DockerException as err:
        key = ("inference", "image", "base") if loaded.spec.inference is not None else ()
        raise MlspecError([loaded.diag(
            key, f"base image '{ref}' is not available locally and cannot be pulled: "
            f"{_short(err)}", "build.base-image",
            "check inference.image.base, or load the image (docker pull / docker load)")]) \
            from None


def run_build(client: Any, root: Path, dockerfile: str, tag: str,
              args: dict[str, str]) -> tuple[str, int, int]:
    """Stream a build; return (image id, steps, cached steps)."""
    import docker.errors

    image_id, steps, cached, last = "", 0, 0, ""
    try:
        stream = client.api.build(path=str(root), dockerfile=dockerfile, tag=tag, buildargs=args,
                                  rm=True, forcerm=True, pull=False, decode=True)
        for event in stream:
            if "stream" in event:
                text = event["stream"]
                sys.stderr.write(text)
                sys.stderr.flush()
                if re.match(r"^Step \d+/\d+ :", text):
                    steps += 1
                elif "Using cache" in text:
                    cached += 1
                if text.strip():
                    last = text.strip()
            elif "error" in event:
                raise CheckFailed(f"docker build failed: {event['error'].strip()}\n"
                                  f"  hint: see the step output above ({last[:200]})")
            elif "aux" in event and "ID" in event["aux"]:
                image_id = event["aux"]["ID"]
    except docker.errors.APIError as err:
        raise _err(f"docker build failed: {_short(err)}", "build.docker",
                   f"check {dockerfile} and the build context") from None
    if not image_id:
        image_id = client.api.inspect_image(tag)["Id"]
    return image_id, steps, cached


def registry_of(repo: str) -> str:
    return registry_host(repo)


def registry_auth(loaded: Any, repo: str) -> dict[str, str] | None:
    """Push credentials, never printed: MLSPEC_REGISTRY_USER/MLSPEC_REGISTRY_PASSWORD (set by
    the generated GitLab job from the CI's own registry token), else the environment variables
    the spec names (ci.secrets.registry_password, optionally registry_username); None when
    none is set (the daemon's own credentials, e.g. `docker login`, or an open registry)."""
    spec = loaded.spec
    password = os.environ.get("MLSPEC_REGISTRY_PASSWORD", "")
    user = os.environ.get("MLSPEC_REGISTRY_USER", "")
    env_name = "MLSPEC_REGISTRY_PASSWORD"
    if not password:
        env_name = spec.ci.secrets.get("registry_password")
        password = os.environ.get(env_name, "") if env_name else ""
        user_env = spec.ci.secrets.get("registry_username")
        user = os.environ.get(user_env, "") if user_env else ""
    if not password:
        return None
    user = user or (spec.inference.image.username if spec.inference is not None else None) \
        or os.environ.get("GITHUB_ACTOR") or os.environ.get("CI_REGISTRY_USER") or ""
    if not user:
        raise MlspecError([loaded.diag(("inference", "image"),
                                       f"${env_name} is set but no registry user is known",
                                       "build.registry-user",
                                       "set inference.image.username")])
    return {"username": user, "password": password, "serveraddress": registry_of(repo)}


def push_tag(client: Any, ref: str, auth: dict[str, str] | None) -> str:
    """Push one tag; return the manifest digest the registry reports."""
    import docker.errors

    repo, tag = ref.rsplit(":", 1)
    digest = ""
    try:
        for event in client.api.push(repo, tag=tag, stream=True, decode=True,
                                     auth_config=auth):
            if "error" in event:
                message = event["error"].strip()
                hint = "check the registry credentials (ci.secrets.registry_password)" \
                    if re.search(r"unauthori|denied|authenticat|credential", message, re.I) else \
                    "check that the registry in inference.image.name is reachable"
                raise CheckFailed(f"push of {ref} failed: {message}\n  hint: {hint}")
            if isinstance(event.get("aux"), dict) and event["aux"].get("Digest"):
                digest = event["aux"]["Digest"]
            elif "status" in event and event.get("progressDetail") in (None, {}):
                sys.stderr.write(f"{event.get('id', '') + ': ' if event.get('id') else ''}"
                                 f"{event['status']}\n")
    except docker.errors.APIError as err:
        raise CheckFailed(f"push of {ref} failed: {_short(err)}") from None
    if not digest:
        raise CheckFailed(f"push of {ref} reported no digest")
    return digest


def write_record(root: Path, which: str, entry: dict[str, Any]) -> Path:
    """Merge this build into .mlspec/build.json, atomically:
    {"version": 1, "serve": {...}, "train": {...}} (one entry per image, the latest build)."""

    path = root / RECORD
    record: dict[str, Any] = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(old, dict):
                record = {k: v for k, v in old.items() if k in IMAGES}
        except ValueError:
            pass
    record["version"] = 1
    record[which] = entry
    write_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def build_image(loaded: Any, which: str, push: bool = False,
                tags: list[str] | None = None) -> Outcome:
    if which not in IMAGES:
        raise _err(f"unknown image '{which}'", "usage", "mlspec build train or mlspec build serve")
    if which == "serve" and loaded.spec.inference is None:
        raise MlspecError([loaded.diag((), "the spec has no inference section: there is no "
                                       "serving image to build", "build.no-inference",
                                       "add inference.image and inference.serve")])
    root: Path = loaded.root
    dockerfile = check_dockerfile(loaded, which)
    facts = git_facts(root, loaded.spec.ci.tag_prefix)
    version = facts.version if facts else None
    repo = image_repository(loaded, which)
    all_tags = image_tags(repo, facts, version, list(tags or []))
    if not all_tags:
        raise _err("not a git repository with a commit: there is no commit to tag the image "
                   "with", "build.no-commit", "commit first, or pass --tag")
    if push and facts is not None and facts.dirty:
        raise CheckFailed("the working tree has uncommitted changes: a pushed image must be "
                          f"reproducible from its commit {facts.commit[:12]}\n"
                          "  hint: commit or stash, then build again")
    args = build_args(loaded, facts, version)
    auth = registry_auth(loaded, repo) if push else None  # fail before a long build
    client = docker_client()
    for base in base_images(root / dockerfile):
        ensure_base(client, loaded, base)
    sys.stderr.write(f"building {all_tags[0]} from {dockerfile}\n")
    image_id, steps, cached = run_build(client, root, dockerfile, all_tags[0], args)
    for ref in all_tags[1:]:
        name, tag = ref.rsplit(":", 1)
        client.api.tag(image_id, name, tag=tag)
    labels = client.api.inspect_image(image_id)["Config"].get("Labels") or {}
    entry: dict[str, Any] = {
        "image": repo, "id": image_id, "tags": all_tags,
        "revision": args["MLSPEC_REVISION"], "dirty": bool(facts and facts.dirty),
        "version": version, "spec_hash": args["MLSPEC_SPEC_HASH"],
        "lock_hash": args["MLSPEC_LOCK_HASH"], "labels": labels,
        "cache": {"steps": steps, "cached": cached}, "pushed": [], "digest": None,
    }
    lines = [f"built {ref} ({image_id[:19]})" for ref in all_tags]
    if push:
        for ref in all_tags:
            digest = push_tag(client, ref, auth)
            entry["pushed"].append({"ref": ref, "digest": digest})
            entry["digest"] = digest
        entry["repo_digest"] = f"{repo}@{entry['digest']}"
        lines.append(f"pushed {entry['repo_digest']}")
    write_record(root, which, entry)
    return Outcome(text="\n".join(lines), data=entry)
