"""`mlspec alert` against a local mock of the GitHub and GitLab APIs (tests/mock_ci_api.py: a
python http.server that records each request; not the real services)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mock_ci_api import MockApi, mock_api

from mlspec.gitops.alert import LABEL, MARKER, alert

SECRET = "s3cr3t-token-value"


@pytest.fixture
def api() -> Iterator[MockApi]:
    with mock_api() as state:
        yield state


def github_env(api: MockApi) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_API_URL": api.url,
            "GITHUB_REPOSITORY": "acme/iris", "MLSPEC_TOKEN": SECRET,
            "RUN_URL": "https://github.com/acme/iris/actions/runs/7"}


def gitlab_env(api: MockApi) -> dict[str, str]:
    return {"GITLAB_CI": "true", "CI_API_V4_URL": api.url + "/api/v4", "CI_PROJECT_ID": "42",
            "CI_JOB_TOKEN": SECRET, "MLSPEC_GITLAB_TOKEN": "glpat-" + SECRET,
            "CI_PIPELINE_URL": "https://gitlab.com/acme/iris/-/pipelines/9"}


def test_github_dispatches_the_retrain_then_creates_one_issue_and_updates_it(
        api: MockApi, tmp_path: Path) -> None:
    report = tmp_path / "monitor-report.md"
    report.write_text("psi_max = 0.31 > 0.2\n")
    first = alert(report, "main", retrain_run=True, issue=True, env=github_env(api))
    assert first.code == 0, first.diagnostics
    report.write_text("psi_max = 0.45 > 0.2\n")
    second = alert(report, "main", retrain_run=True, issue=True, env=github_env(api))
    assert second.code == 0, second.diagnostics
    dispatches = api.calls("POST", r"^/repos/acme/iris/actions/workflows/"
                                   r"mlspec-schedule\.yml/dispatches$")
    assert [d.body for d in dispatches] == [{"ref": "main", "inputs": {"mode": "refresh"}}] * 2
    assert all(d.headers["Authorization"] == f"Bearer {SECRET}" for d in dispatches)
    assert len(api.calls("POST", r"^/repos/acme/iris/issues$")) == 1  # created once
    assert len(api.issues) == 1
    issue = api.issues[0]
    assert issue["labels"] == [LABEL] and issue["body"].startswith(MARKER)
    assert "0.45" in issue["body"] and "0.31" not in issue["body"]  # the latest report
    assert len(api.calls("PATCH", r"^/repos/acme/iris/issues/1$")) == 1
    assert api.comments == [(1, "Failed again: https://github.com/acme/iris/actions/runs/7")]
    assert "issue #1 created" in first.text and "issue #1 updated" in second.text


def test_gitlab_triggers_with_the_job_token_and_writes_the_issue_with_the_api_token(
        api: MockApi) -> None:
    for _ in range(2):
        out = alert(None, "main", retrain_run=True, issue=True, env=gitlab_env(api))
        assert out.code == 0, out.diagnostics
    triggers = api.calls("POST", r"^/projects/42/trigger/pipeline$")
    assert [t.body for t in triggers] == [{"token": SECRET, "ref": "main",
                                           "variables[MLSPEC_SCHEDULE]": "refresh"}] * 2
    assert all("PRIVATE-TOKEN" not in t.headers for t in triggers)
    created = api.calls("POST", r"^/projects/42/issues$")
    assert len(created) == 1 and created[0].headers["PRIVATE-TOKEN"] == "glpat-" + SECRET
    assert len(api.issues) == 1 and len(api.calls("PUT", r"^/projects/42/issues/1$")) == 1
    assert "left no output" in api.issues[0]["description"]


def test_an_issue_without_the_marker_is_not_taken_over(api: MockApi) -> None:
    api.issues.append({"number": 1, "title": "someone's", "body": "about monitoring",
                       "state": "open"})
    assert alert(None, "main", retrain_run=False, issue=True, env=github_env(api)).code == 0
    assert len(api.issues) == 2 and api.issues[0]["body"] == "about monitoring"
    assert api.calls("POST", "dispatches") == []  # --no-retrain


def test_http_errors_and_a_missing_gitlab_token_are_diagnostics(api: MockApi) -> None:
    api.fail[r"/dispatches$"] = 403
    out = alert(None, "main", retrain_run=True, issue=True, env=github_env(api))
    assert out.code == 1
    assert [d.rule for d in out.diagnostics] == ["alert.retrain"]
    assert "HTTP 403 mock failure" in out.diagnostics[0].message
    assert len(api.issues) == 1 and "could not be started" in api.issues[0]["body"]
    env = gitlab_env(api)
    del env["MLSPEC_GITLAB_TOKEN"]
    out = alert(None, "main", retrain_run=True, issue=True, env=env)
    assert out.code == 1 and [d.rule for d in out.diagnostics] == ["alert.issue-token"]
    assert len(api.calls("POST", "trigger/pipeline")) == 1  # the retrain still started
    assert alert(None, "main", retrain_run=True, issue=True, env={}).code == 2


def test_cli_exit_codes_and_no_token_in_the_output(api: MockApi) -> None:
    api.fail[r"/issues"] = 500
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB"))},
           **github_env(api)}
    res = subprocess.run([sys.executable, "-m", "mlspec", "alert", "--ref", "main"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr
    assert "HTTP 500" in res.stderr and "Traceback" not in res.stderr
    assert SECRET not in res.stdout + res.stderr
    assert "retrain: started" in res.stdout


def _others(n: int, gitlab: bool) -> list[dict[str, object]]:
    """n open issues with the label but not the marker (someone's own), before ours."""
    key, num = ("description", "iid") if gitlab else ("body", "number")
    return [{num: i + 1, "title": f"other {i}", key: "not ours",
             "state": "opened" if gitlab else "open"} for i in range(n)]


@pytest.mark.parametrize("gitlab", [False, True], ids=["github", "gitlab"])
def test_the_issue_search_reads_every_page(api: MockApi, gitlab: bool) -> None:
    """Ours is the 251st open labelled issue: on page 3 of 100 (Link rel=next on GitHub,
    X-Next-Page on GitLab); it is updated, not duplicated."""
    key, num = ("description", "iid") if gitlab else ("body", "number")
    api.issues.extend(_others(250, gitlab))
    api.issues.append({num: 251, "title": "ours", key: MARKER + "\nold",
                       "state": "opened" if gitlab else "open"})
    env = gitlab_env(api) if gitlab else github_env(api)
    out = alert(None, "main", retrain_run=False, issue=True, env=env)
    assert out.code == 0, out.diagnostics
    assert "issue #251 updated" in out.text and len(api.issues) == 251
    pages = api.calls("GET", r"/issues$")
    assert [r.query.get("page", ["1"])[0] for r in pages] == ["1", "2", "3"]
    assert all(r.query["per_page"] == ["100"] for r in pages)
    assert all(r.query["labels"] == [LABEL] for r in pages)  # the next link keeps the query


def test_a_hostile_api_cannot_page_forever_nor_take_the_token_elsewhere(api: MockApi) -> None:
    """Mock answers: a next page on every page (Link on GitHub, X-Next-Page on GitLab); then
    a next link to another host."""
    from mlspec.gitops.ciapi import MAX_PAGES

    api.endless = True
    for env in (github_env(api), gitlab_env(api)):
        out = alert(None, "main", retrain_run=False, issue=True, env=env)
        assert out.code == 1 and [d.rule for d in out.diagnostics] == ["alert.issue"]
        assert f"more than {MAX_PAGES} pages" in out.diagnostics[0].message
        assert len(api.calls("GET", r"/issues$")) == MAX_PAGES and api.issues == []
        api.requests.clear()
    with mock_api() as elsewhere:
        api.next_base = elsewhere.url
        out = alert(None, "main", retrain_run=False, issue=True, env=github_env(api))
        assert elsewhere.requests == []  # never sent the token there
    assert out.code == 1 and "not under the API's base URL" in out.diagnostics[0].message
    assert len(api.calls("GET", r"/issues$")) == 1 and api.issues == []


@pytest.mark.parametrize("gitlab", [False, True], ids=["github", "gitlab"])
def test_passed_closes_the_one_open_issue_with_the_commit_and_run_then_does_nothing(
        api: MockApi, gitlab: bool) -> None:
    """A failure opens the issue; `--passed` comments (commit, run) and closes it; a second
    pass finds none open and sends nothing but the search."""
    env = {**(gitlab_env(api) if gitlab else github_env(api)),
           "GITHUB_SHA" if not gitlab else "CI_COMMIT_SHA": "c0ffee" * 6 + "abcd"}
    api.issues.extend(_others(1, gitlab))  # someone's labelled issue: never closed
    assert alert(None, "main", retrain_run=False, issue=True, env=env).code == 0
    ours = api.issues[1]
    out = alert(None, "main", retrain_run=False, issue=True, env=env, passed=True)
    assert out.code == 0, out.diagnostics
    assert out.text == "issue #2 closed: the monitor passed"
    assert ours["state"] == "closed" and api.issues[0]["state"] in ("open", "opened")
    run = env.get("RUN_URL") or env["CI_PIPELINE_URL"]
    assert api.comments == [(2, f"The scheduled monitor passed at commit {'c0ffee' * 6}abcd "
                                f"in {run}: closing. A later failure opens a new issue.")]
    assert api.calls("POST", "dispatches|trigger") == []  # a pass starts no retrain
    writes = len([r for r in api.requests if r.method != "GET"])
    again = alert(None, "main", retrain_run=True, issue=True, env=env, passed=True)
    assert again.code == 0 and "nothing to close" in again.text
    assert len([r for r in api.requests if r.method != "GET"]) == writes
    # the next failure opens a new issue: the closed one is history
    assert "created" in alert(None, "main", retrain_run=False, issue=True, env=env).text


def test_passed_without_the_gitlab_token_or_with_an_api_error_is_exit_1(api: MockApi) -> None:
    env = gitlab_env(api)
    del env["MLSPEC_GITLAB_TOKEN"]
    out = alert(None, "main", retrain_run=True, issue=True, env=env, passed=True)
    assert out.code == 1 and [d.rule for d in out.diagnostics] == ["alert.issue-token"]
    assert api.requests == []
    api.fail[r"/issues"] = 502
    out = alert(None, "main", retrain_run=True, issue=True, env=github_env(api), passed=True)
    assert out.code == 1 and "HTTP 502" in out.diagnostics[0].message


def test_cli_passed(api: MockApi) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB"))},
           **github_env(api)}
    res = subprocess.run([sys.executable, "-m", "mlspec", "alert", "--passed"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "nothing to close" in res.stdout and SECRET not in res.stdout + res.stderr


def test_hostile_issue_items_are_not_ours() -> None:
    """Items without an integer number/iid or a text body (a broken or hostile API) are
    skipped, not a traceback."""
    from mlspec.gitops import alert

    class Pages:
        def __init__(self, items: list[object]) -> None:
            self.items = items

        def pages(self, *args: object, **kwargs: object) -> list[object]:
            return self.items

    marker = alert.MARKER
    github = [{"number": "12abc", "body": marker}, {"body": marker}, {"number": 3, "body": 7},
              {"number": True, "body": marker}, "x", {"number": 9, "body": marker}]
    gitlab = [{"iid": "4", "description": marker}, {"iid": 5, "description": None},
              {"iid": 6, "description": marker}]
    for platform, items, want in (("github", github, 9), ("gitlab", gitlab, 6)):
        ci = alert.Ci(platform=platform, api="http://127.0.0.1:9", project="p", token="t",
                      issue_token="t", run_url="")
        assert alert.open_issue(ci, Pages(items)) == want  # type: ignore[arg-type]
