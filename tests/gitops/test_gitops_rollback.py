"""`mlspec rollback` in a real git history with two real releases (tests/gitops/rollback_helpers):
which release and digest it picks, what it refuses (exit 2, a Diagnostic, no record), the
record (an annotated tag `mlspec lineage` lists), and the dispatch it sends.

The dispatch goes to a local HTTP server standing in for the hosted GitHub / GitLab API (the
base URL comes from GITHUB_API_URL / CI_API_V4_URL, as on a runner): it records the request and
answers as the real API does (204 / 201). Nothing else is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import git, mlspec
from rollback_helpers import FIRST, IMAGE, SECOND, rollback, tags, two_releases

_TEMPLATE: dict[str, Path] = {}


@pytest.fixture
def repo(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    if "repo" not in _TEMPLATE:
        _TEMPLATE["repo"] = two_releases(tmp_path_factory.mktemp("rollback") / "repo")
    root = tmp_path / "repo"
    shutil.copytree(_TEMPLATE["repo"], root, symlinks=True)
    return root


def test_no_version_redeploys_the_release_before_the_newest(repo: Path) -> None:
    code, out, err = rollback(repo, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["version"], data["tag"], data["digest"]) == ("0.1.0", "v0.1.0", FIRST)
    assert data["from"] == "v0.2.0" and data["image"] == IMAGE
    assert data["commit"] == git("rev-parse", "v0.1.0^{commit}", cwd=repo)
    # recorded: an annotated tag on the release's commit, saying what was redeployed
    assert data["recorded"] == "rollback/v0.1.0/1" and data["triggered"] is False
    assert git("cat-file", "-t", "rollback/v0.1.0/1", cwd=repo) == "tag"
    body = git("tag", "-l", "--format=%(contents)", "rollback/v0.1.0/1", cwd=repo)
    assert f"digest: {FIRST}" in body and "from: v0.2.0" in body
    # no token: the exact command, exit 0
    assert data["command"] == ("gh workflow run mlspec-release.yml --repo acme/toy --ref main "
                               f"-f rollback_to=0.1.0 -f rollback_digest={FIRST}")
    # visible in the release's lineage (text and JSON); the release list is unchanged
    lin = json.loads(mlspec("lineage", "0.1.0", "--json", cwd=repo).stdout)
    assert [r["record"] for r in lin["rollbacks"]] == ["rollback/v0.1.0/1"]
    assert "rolled back  rollback/v0.1.0/1" in mlspec("lineage", "0.1.0", cwd=repo).stdout
    models = json.loads(mlspec("models", "--json", cwd=repo).stdout)
    assert [m["tag"] for m in models] == ["v0.2.0", "v0.1.0"]


def test_a_named_version_with_or_without_the_prefix(repo: Path) -> None:
    for n, version in enumerate(("0.1.0", "v0.1.0"), start=1):
        code, out, err = rollback(repo, version, "--json")
        assert code == 0, err
        assert json.loads(out)["recorded"] == f"rollback/v0.1.0/{n}"
    code, out, _ = rollback(repo, "0.2.0", "--json")  # the newest: its own digest
    assert code == 0 and json.loads(out)["digest"] == SECOND and json.loads(out)["from"] is None


def test_a_version_never_released_is_refused_with_exit_2(repo: Path) -> None:
    for bad in ("0.9.0", "v0.3.0", "not-a-version"):
        code, out, err = rollback(repo, bad)
        assert code == 2, (bad, out, err)
        assert err.startswith(("0.9.0 was never released", "0.3.0 was never released",
                               "'not-a-version' is not a release version")), err
        assert "1 error" in err
    code, _, err = rollback(repo, "0.9.0")
    assert "[rollback.unknown]" in err and "released versions: 0.1.0, 0.2.0" in err
    assert tags(repo, "rollback/*") == []  # nothing recorded


def test_a_release_without_a_pushed_digest_is_refused(repo: Path) -> None:
    git("commit", "-q", "--allow-empty", "-m", "docs only", cwd=repo)
    git("tag", "-a", "v0.3.0", "-m", "hand-made release, never built", cwd=repo)
    code, _, err = rollback(repo)  # the release before v0.3.0 is v0.2.0: it has a digest
    assert code == 0, err
    code, _, err = rollback(repo, "0.3.0")
    assert code == 2
    assert "release v0.3.0 has no pushed image digest" in err and "[rollback.no-image]" in err
    (repo / ".mlspec" / "build.json").unlink()  # v0.2.0's digest was only the local record
    code, _, err = rollback(repo, "0.2.0")
    assert code == 2 and "release v0.2.0 has no pushed image digest" in err


def test_one_release_has_nothing_to_roll_back_to(repo: Path) -> None:
    git("tag", "-d", "v0.2.0", cwd=repo)
    code, _, err = rollback(repo)
    assert code == 2
    assert ("nothing to roll back to: v0.1.0 is deployed (the newest release) and no release "
            "is older (releases: 0.1.0)") in err


def test_rolling_back_again_steps_back_from_the_release_rolled_back_to(repo: Path) -> None:
    """No VERSION: the release before the deployed one, which is the newest release unless a
    rollback was recorded after it was tagged."""
    third = "sha256:" + "3c" * 32
    at = {**os.environ, "GIT_COMMITTER_DATE": "2026-01-06T09:00:00Z"}
    for cmd in (["commit", "-q", "--allow-empty", "-m", "docs"],
                ["tag", "-a", "v0.3.0", "-m", "release 0.3.0"],
                ["notes", "--ref", "refs/notes/mlspec", "add", "-m",
                 json.dumps({"image": IMAGE, "digest": third}), "HEAD"]):
        subprocess.run(["git", *cmd], cwd=repo, env=at, check=True)
    steps = []
    for day in ("07", "08", "09"):
        code, out, err = rollback(repo, "--json",
                                  extra={"GIT_COMMITTER_DATE": f"2026-01-{day}T09:00:00Z"})
        steps.append((code, json.loads(out)["tag"] if code == 0 else err))
    assert steps[:2] == [(0, "v0.2.0"), (0, "v0.1.0")]
    assert steps[2][0] == 2
    assert "v0.1.0 is deployed (rolled back by rollback/v0.1.0/1)" in steps[2][1]
    # a release tagged after the rollbacks is the deployed one again
    later = {**os.environ, "GIT_COMMITTER_DATE": "2026-01-10T09:00:00Z"}
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "more docs"], cwd=repo,
                   env=later, check=True)
    subprocess.run(["git", "tag", "-a", "v0.4.0", "-m", "release 0.4.0"], cwd=repo, env=later,
                   check=True)
    code, out, _ = rollback(repo, "--json", extra={"GIT_COMMITTER_DATE": "2026-01-11T09:00:00Z"})
    assert code == 0 and (json.loads(out)["tag"], json.loads(out)["from"]) == ("v0.3.0", "v0.4.0")


def test_dry_run_records_and_sends_nothing(repo: Path) -> None:
    code, out, err = rollback(repo, "--dry-run", "--ci", "gitlab",
                              extra={"GITLAB_TOKEN": "glpat-x", "CI_PROJECT_ID": "42"})
    assert code == 0, err
    assert out.startswith("would roll back to v0.1.0 ") and "MLSPEC_ROLLBACK_TO" in out
    assert tags(repo, "rollback/*") == []


def test_resolve_in_ci_checks_the_hostile_inputs(repo: Path) -> None:
    """What the rollback job runs: VERSION and the digest come from a dispatch input."""
    code, out, err = rollback(repo, "--resolve", "v0.1.0", "--digest", "")
    assert (code, out) == (0, f"digest={FIRST}\nversion=0.1.0\n"), err
    code, out, _ = rollback(repo, "--resolve", "0.1.0", "--digest", FIRST)
    assert code == 0 and out.startswith(f"digest={FIRST}\n")
    for digest, why in ((SECOND, "is not the one v0.1.0 released"),
                        ("sha256:x; touch pwned", "is not an image digest"),
                        ("sha256:" + "A" * 64, "is not an image digest")):
        code, out, err = rollback(repo, "--resolve", "0.1.0", "--digest", digest)
        assert code == 2 and out == "" and why in err, err
    code, out, err = rollback(repo, "--resolve", "$(touch pwned)", "--digest", FIRST)
    assert code == 2 and "is not a release version" in err
    assert not (repo / "pwned").exists() and tags(repo, "rollback/*") == []
    # a checkout without the lineage's digest (a CI runner) takes the given one
    (repo / ".mlspec" / "build.json").unlink()
    code, out, _ = rollback(repo, "--resolve", "0.2.0", "--digest", SECOND)
    assert code == 0 and out.startswith(f"digest={SECOND}\n")


class _Api(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []
    status = 204
    location = ""  # with a 3xx status: where the redirect points

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(self.status)
        if self.location:
            self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[tuple[str, type[_Api]]]:
    _Api.seen, _Api.status, _Api.location = [], 204, ""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Api
    server.shutdown()
    server.server_close()


def test_dispatches_the_github_workflow_with_the_inputs(
        repo: Path, api: tuple[str, type[_Api]]) -> None:
    url, handler = api
    code, out, err = rollback(repo, "--json", extra={
        "GITHUB_TOKEN": "ghs_test", "GITHUB_API_URL": url, "GITHUB_REPOSITORY": "acme/toy"})
    assert code == 0, err
    assert json.loads(out)["triggered"] is True
    [req] = handler.seen
    assert req["path"] == "/repos/acme/toy/actions/workflows/mlspec-release.yml/dispatches"
    assert req["headers"]["Authorization"] == "Bearer ghs_test"
    assert req["body"] == {"ref": "main",
                           "inputs": {"rollback_to": "0.1.0", "rollback_digest": FIRST}}


def test_dispatches_a_gitlab_pipeline_with_the_variables(
        repo: Path, api: tuple[str, type[_Api]]) -> None:
    url, handler = api
    handler.status = 201
    code, _, err = rollback(repo, "0.1.0", "--ci", "gitlab", extra={
        "GITLAB_TOKEN": "glpat-test", "CI_API_V4_URL": url + "/api/v4", "CI_PROJECT_ID": "7"})
    assert code == 0, err
    [req] = handler.seen
    assert req["path"] == "/api/v4/projects/7/pipeline"
    assert req["headers"]["PRIVATE-TOKEN"] == "glpat-test"
    assert req["body"] == {"ref": "main", "variables": [
        {"key": "MLSPEC_ROLLBACK_TO", "value": "0.1.0"},
        {"key": "MLSPEC_ROLLBACK_DIGEST", "value": FIRST}]}


def test_a_refused_dispatch_is_exit_1_with_the_retry_command(
        repo: Path, api: tuple[str, type[_Api]]) -> None:
    url, handler = api
    handler.status = 404
    code, _, err = rollback(repo, extra={"GITHUB_TOKEN": "t", "GITHUB_API_URL": url})
    assert code == 1
    assert "answered HTTP 404" in err and "retry with: gh workflow run" in err
    assert tags(repo, "rollback/*") == ["rollback/v0.1.0/1"]  # recorded before sending


def test_a_redirect_is_refused_and_the_token_never_follows_it(
        repo: Path, api: tuple[str, type[_Api]]) -> None:
    """The API answers 307 to another host (tests/mock_ci_api.py, a local mock, records what
    reaches it): requests would resend GitLab's PRIVATE-TOKEN there; the one CI client
    (gitops/ciapi.py) follows no redirect."""
    from mock_ci_api import mock_api

    url, handler = api
    with mock_api() as elsewhere:
        handler.status, handler.location = 307, elsewhere.url + "/api/v4/projects/7/pipeline"
        code, _, err = rollback(repo, "0.1.0", "--ci", "gitlab", extra={
            "GITLAB_TOKEN": "glpat-test", "CI_API_V4_URL": url + "/api/v4",
            "CI_PROJECT_ID": "7"})
        assert elsewhere.requests == []
    assert code == 1 and "answered HTTP 307" in err and "retry with: curl" in err
    assert "glpat-test" not in err
