"""Trigger the release pipeline's rollback jobs on GitHub or GitLab (`mlspec rollback`).

GitHub: `POST {GITHUB_API_URL}/repos/{owner/repo}/actions/workflows/mlspec-release.yml/dispatches`
with the inputs `rollback_to` and `rollback_digest`, token `GITHUB_TOKEN` (or `GH_TOKEN`),
repository `GITHUB_REPOSITORY` or the `origin` remote. GitLab: `POST
{CI_API_V4_URL}/projects/{id}/pipeline` with the variables `MLSPEC_ROLLBACK_TO` and
`MLSPEC_ROLLBACK_DIGEST` (the pipeline's workflow rules route it to its rollback jobs), token
`GITLAB_TOKEN`, project `CI_PROJECT_ID` or the `origin` remote's path. The API base URLs
come from the environment (the variables CI itself sets), so a local server can stand in.
Without a token nothing is sent: the exact `gh` / `curl` command is printed instead. The
request goes through mlspec.gitops.ciapi, the one client of both APIs (`mlspec alert` too).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlspec.errors import CheckFailed, Diagnostic, MlspecError
from mlspec.gitops.gitrefs import open_repo

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec

WORKFLOW = "mlspec-release.yml"
CIS = ("github", "gitlab")


@dataclass(frozen=True)
class Request:
    """One POST through mlspec.gitops.ciapi (the one client: headers, errors, timeout)."""

    platform: str  # github | gitlab
    base: str  # the API's base URL
    path: str  # under base
    token: str  # never printed
    body: dict[str, Any]

    @property
    def url(self) -> str:
        return f"{self.base}/{self.path}"


@dataclass(frozen=True)
class Action:
    command: str  # what a person runs to do the same (printed when there is no token)
    token_var: str
    request: Request | None  # None without a token: nothing is sent


def choose(loaded: LoadedSpec, ci: str | None) -> str:
    """The CI to trigger: --ci, else the first of ci.targets that runs pipelines."""
    names = [t for t in loaded.spec.ci.targets if t in CIS]
    if ci is not None:
        if ci not in CIS:
            raise MlspecError([Diagnostic.nowhere(f"unknown CI '{ci}'", "rollback.ci",
                                                  "give github or gitlab")])
        return ci
    if not names:
        raise MlspecError([Diagnostic.nowhere("ci.targets names no CI with pipelines",
                                              "rollback.ci", "add github or gitlab")])
    return names[0]


def _origin_path(loaded: LoadedSpec) -> str:
    """owner/name (GitHub) or group/project (GitLab) from the origin remote's URL."""
    repo = open_repo(loaded.root)
    assert repo is not None
    try:
        url = str(repo.remotes["origin"].url)
    except (IndexError, KeyError):
        return ""
    m = re.search(r"^(?:[a-z+]+://[^/]+/|[^@/]+@[^:/]+:)(.+?)(?:\.git)?/?$", url)
    return m.group(1) if m else ""


def plan(loaded: LoadedSpec, ci: str, version: str, digest: str) -> Action:
    branch = loaded.spec.ci.default_branch
    if ci == "github":
        repo = os.environ.get("GITHUB_REPOSITORY") or _origin_path(loaded) or "OWNER/REPO"
        command = shlex.join(["gh", "workflow", "run", WORKFLOW, "--repo", repo, "--ref",
                              branch, "-f", f"rollback_to={version}",
                              "-f", f"rollback_digest={digest}"])
        token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
        api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
        path = f"repos/{repo}/actions/workflows/{WORKFLOW}/dispatches"
        body: dict[str, Any] = {"ref": branch, "inputs": {"rollback_to": version,
                                                          "rollback_digest": digest}}
        return Action(command, "GITHUB_TOKEN",
                      Request("github", api, path, token, body) if token else None)
    project = os.environ.get("CI_PROJECT_ID") or _origin_path(loaded) or "GROUP/PROJECT"
    api = os.environ.get("CI_API_V4_URL", "https://gitlab.com/api/v4").rstrip("/")
    path = f"projects/{quote(project, safe='')}/pipeline"
    url = f"{api}/{path}"
    body = {"ref": branch, "variables": [
        {"key": "MLSPEC_ROLLBACK_TO", "value": version},
        {"key": "MLSPEC_ROLLBACK_DIGEST", "value": digest}]}
    command = shlex.join(["curl", "--fail", "--request", "POST", "--header",
                          "PRIVATE-TOKEN: $GITLAB_TOKEN", "--header",
                          "Content-Type: application/json", "--data",
                          json.dumps(body, sort_keys=True), url])
    command = command.replace("'PRIVATE-TOKEN: $GITLAB_TOKEN'", '"PRIVATE-TOKEN: $GITLAB_TOKEN"')
    token = os.environ.get("GITLAB_TOKEN")
    return Action(command, "GITLAB_TOKEN",
                  Request("gitlab", api, path, token, body) if token else None)


def send(action: Action) -> None:
    """POST the dispatch once (ciapi never retries: a second dispatch could start a second
    rollback); a refusal is a failed check (exit 1) with the command to retry by hand."""
    from mlspec.gitops.ciapi import Api, ApiError

    req = action.request
    assert req is not None
    try:
        Api(req.platform, req.base).call("POST", req.path, "trigger the rollback",
                                         token=req.token, json=req.body)
    except ApiError as err:
        problem = (f"could not reach {req.url}: {err.detail}" if err.status is None
                   else f"{req.url} answered HTTP {err.status}: {err.detail}")
        raise CheckFailed(f"recorded, but {problem}\nretry with: {action.command}") from None
