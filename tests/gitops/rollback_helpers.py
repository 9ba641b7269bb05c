"""A real git history with two real `mlspec release`s, each with a recorded image digest.

main: the toy project at max_depth 5, released as v0.1.0; then max_depth 7 (a better model,
so the relative gates pass), released as v0.2.0. The digests are fake but well formed (no
docker here): v0.1.0's is a git note under refs/notes/mlspec (as lineage reads a pushed
build's record), v0.2.0's is the local build record `.mlspec/build.json` in
`mlspec build --push`'s format. Dates are fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, init_repo, mlspec
from gitops_helpers import commit, env, run, set_depth, write_project

FIRST = "sha256:" + "1a" * 32
SECOND = "sha256:" + "2b" * 32
IMAGE = "registry.example/acme/toy"
DEPLOY = """\
  targets: [github, gitlab]
  secrets: {registry_password: REGISTRY_TOKEN}
inference:
  image: {name: @IMAGE@}
  deploy:
    production: {when: "tag:v*", command: 'echo "deployed $IMAGE_DIGEST"'}
"""
NO_TOKENS = {"GITHUB_TOKEN": "", "GH_TOKEN": "", "GITLAB_TOKEN": "",
             "GITHUB_REPOSITORY": "acme/toy"}


def _release(root: Path, version: str, date: str) -> str:
    r = mlspec("release", version, cwd=root,
               env={**env(), "GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date})
    assert r.returncode == 0, r.stdout + r.stderr
    return git("rev-parse", "HEAD", cwd=root)


def two_releases(path: Path) -> Path:
    root = init_repo(path)
    write_project(root, 5)
    with (root / "mlspec.yaml").open("a") as f:
        f.write(DEPLOY.replace("@IMAGE@", IMAGE))
    commit(root, "start", "2026-01-01T10:00:00Z")
    run(root)
    commit(root, "baseline: max_depth 5", "2026-01-01T11:00:00Z")
    first = _release(root, "0.1.0", "2026-01-02T09:00:00Z")
    note = json.dumps({"image": IMAGE, "digest": FIRST})
    git("notes", "--ref", "refs/notes/mlspec", "add", "-m", note, first, cwd=root)
    set_depth(root, 7)
    run(root)
    commit(root, "deeper trees: max_depth 7", "2026-01-03T11:00:00Z")
    second = _release(root, "0.2.0", "2026-01-04T09:00:00Z")
    record = {"version": 1, "images": {"serve": {
        "image": IMAGE, "revision": second, "dirty": False, "digest": SECOND,
        "repo_digest": f"{IMAGE}@{SECOND}"}}}
    (root / ".mlspec").mkdir(exist_ok=True)
    (root / ".mlspec" / "build.json").write_text(json.dumps(record))
    return root


def rollback(root: Path, *args: str, extra: dict[str, str] | None = None
             ) -> tuple[int, str, str]:
    environ = {**NO_TOKENS, "GIT_COMMITTER_DATE": "2026-01-05T09:00:00Z", **(extra or {})}
    r = mlspec("rollback", *args, cwd=root, env=environ)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stdout, r.stderr


def tags(root: Path, pattern: str) -> list[str]:
    return git("tag", "-l", pattern, cwd=root).split()


