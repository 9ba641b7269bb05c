"""`mlspec alert`: what the schedule pipeline does after a failed monitor job (and, with
`--passed`, after a passing one: close the open issue with a comment naming the commit and run).

1. **Retrain**: start the schedule flow in mode `refresh`, which runs the refresh job alone
   (never the monitor, so a retrain cannot start another retrain).
   GitHub: `POST {GITHUB_API_URL}/repos/{GITHUB_REPOSITORY}/actions/workflows/
   mlspec-schedule.yml/dispatches` with the job's token (`actions: write`);
   GitLab: `POST {CI_API_V4_URL}/projects/{CI_PROJECT_ID}/trigger/pipeline` with CI_JOB_TOKEN
   and the variable MLSPEC_SCHEDULE=refresh.
2. **One issue**: the open issue labelled `mlspec-monitor` whose body holds the hidden marker
   is updated (its body replaced by the latest report, plus a comment so watchers hear of it);
   only when there is none is one created. GitHub: the job's token (`issues: write`); GitLab:
   a project access token with api scope in the CI/CD variable `--token-variable` names
   (CI_JOB_TOKEN cannot write issues).

Base URLs and ids come from the standard CI variables, so a local HTTP server stands in for
the API in tests. Every HTTP failure is a Diagnostic; no token is ever printed or put in a URL.
The HTTP client (headers, errors, pagination) is mlspec.gitops.ciapi, shared with rollback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlspec.errors import Diagnostic, Outcome
from mlspec.gitops.ciapi import Api, ApiError

LABEL = "mlspec-monitor"
MARKER = "<!-- mlspec-monitor -->"
TITLE = "mlspec: production monitoring failed"
WORKFLOW = "mlspec-schedule.yml"
MODE = "refresh"
DEFAULT_TOKEN_VARIABLE = "MLSPEC_GITLAB_TOKEN"  # = the GitLab target's note token
MAX_REPORT = 60_000  # GitHub caps an issue body at 65 536 characters


@dataclass(frozen=True)
class Ci:
    """Where the alert runs: the platform's API, the project, the tokens (never printed)."""

    platform: str  # github | gitlab
    api: str  # GITHUB_API_URL / CI_API_V4_URL, no trailing slash
    project: str  # owner/repo (GitHub) or the numeric project id (GitLab)
    token: str  # the job's own token
    issue_token: str  # GitHub: the job's token; GitLab: the api-scope token, or ""
    run_url: str
    commit: str = ""  # GITHUB_SHA / CI_COMMIT_SHA: the commit the monitor ran at


def ci_from_env(env: Mapping[str, str], token_variable: str) -> Ci | Diagnostic:
    def need(*names: str) -> Diagnostic | None:
        missing = [n for n in names if not env.get(n)]
        if missing:
            return Diagnostic.nowhere(
                f"mlspec alert runs in CI: {', '.join(missing)} not set", "alert.env",
                "it is the generated schedule pipeline's monitor-failed job")
        return None

    if env.get("GITHUB_ACTIONS") == "true":
        if problem := need("GITHUB_API_URL", "GITHUB_REPOSITORY"):
            return problem
        token = env.get("MLSPEC_TOKEN") or env.get("GITHUB_TOKEN", "")
        return Ci("github", env["GITHUB_API_URL"].rstrip("/"), env["GITHUB_REPOSITORY"], token,
                  token, env.get("RUN_URL", ""), env.get("GITHUB_SHA", ""))
    if env.get("GITLAB_CI") == "true" or env.get("CI_API_V4_URL"):  # gitlab-ci-local: false
        if problem := need("CI_API_V4_URL", "CI_PROJECT_ID"):
            return problem
        token = env.get("CI_JOB_TOKEN") or env.get("MLSPEC_TOKEN", "")
        return Ci("gitlab", env["CI_API_V4_URL"].rstrip("/"), env["CI_PROJECT_ID"], token,
                  env.get(token_variable, ""), env.get("RUN_URL") or env.get("CI_PIPELINE_URL", ""),
                  env.get("CI_COMMIT_SHA", ""))
    return Diagnostic.nowhere("mlspec alert found neither GitHub Actions nor GitLab CI",
                              "alert.env", "GITHUB_ACTIONS must be 'true', or CI_API_V4_URL set")


def retrain(ci: Ci, api: Api, ref: str) -> str:
    """Start the refresh-and-retrain run; returns what was started."""
    if ci.platform == "github":
        api.call("POST", f"repos/{ci.project}/actions/workflows/{WORKFLOW}/dispatches",
                 "start the retrain", token=ci.token,
                 json={"ref": ref, "inputs": {"mode": MODE}})
        return f"{WORKFLOW} (mode {MODE}) on {ref}"
    api.call("POST", f"projects/{ci.project}/trigger/pipeline", "start the retrain",
             token="", data={"token": ci.token, "ref": ref, "variables[MLSPEC_SCHEDULE]": MODE})
    return f"a pipeline with MLSPEC_SCHEDULE={MODE} on {ref}"


def open_issue(ci: Ci, api: Api) -> int | None:
    """The number (GitHub) or iid (GitLab) of the one open monitoring issue: the oldest open
    issue labelled LABEL whose body holds MARKER, over every page of the search. The API's
    answer is untrusted: an item without an integer number and a text body is not ours."""
    if ci.platform == "github":
        found = api.pages(f"repos/{ci.project}/issues", "find the monitoring issue",
                          token=ci.issue_token, params={"labels": LABEL, "state": "open"})
        mine = [i["number"] for i in found if isinstance(i, dict)
                and type(i.get("number")) is int and isinstance(i.get("body"), str)
                and MARKER in i["body"] and "pull_request" not in i]
    else:
        found = api.pages(f"projects/{ci.project}/issues", "find the monitoring issue",
                          token=ci.issue_token, params={"labels": LABEL, "state": "opened"})
        mine = [i["iid"] for i in found if isinstance(i, dict)
                and type(i.get("iid")) is int and isinstance(i.get("description"), str)
                and MARKER in i["description"]]
    return min(mine) if mine else None


def upsert_issue(ci: Ci, api: Api, body: str, note: str) -> tuple[str, int]:
    """Update the one open monitoring issue, or create it: ("updated" | "created", number)."""
    tok = ci.issue_token
    found = open_issue(ci, api)
    if ci.platform == "github":
        if found is not None:
            number = found
            api.call("PATCH", f"repos/{ci.project}/issues/{number}", "update the issue",
                     token=tok, json={"body": body})
            api.call("POST", f"repos/{ci.project}/issues/{number}/comments",
                     "comment on the issue", token=tok, json={"body": note})
            return "updated", number
        made = api.call("POST", f"repos/{ci.project}/issues", "open the issue", token=tok,
                        json={"title": TITLE, "body": body, "labels": [LABEL]})
        return "created", int(made["number"])
    if found is not None:
        iid = found
        api.call("PUT", f"projects/{ci.project}/issues/{iid}", "update the issue", token=tok,
                 json={"description": body})
        api.call("POST", f"projects/{ci.project}/issues/{iid}/notes", "comment on the issue",
                 token=tok, json={"body": note})
        return "updated", iid
    made = api.call("POST", f"projects/{ci.project}/issues", "open the issue", token=tok,
                    json={"title": TITLE, "description": body, "labels": LABEL})
    return "created", int(made["iid"])


def close_issue(ci: Ci, api: Api, note: str) -> int | None:
    """Comment on the one open monitoring issue and close it; None when none is open."""
    found = open_issue(ci, api)
    if found is None:
        return None
    tok = ci.issue_token
    if ci.platform == "github":
        issue = f"repos/{ci.project}/issues/{found}"
        api.call("POST", f"{issue}/comments", "comment on the issue", token=tok,
                 json={"body": note})
        api.call("PATCH", issue, "close the issue", token=tok,
                 json={"state": "closed", "state_reason": "completed"})
    else:
        issue = f"projects/{ci.project}/issues/{found}"
        api.call("POST", f"{issue}/notes", "comment on the issue", token=tok,
                 json={"body": note})
        api.call("PUT", issue, "close the issue", token=tok, json={"state_event": "close"})
    return found


def passed_note(ci: Ci) -> str:
    at = f" at commit {ci.commit}" if ci.commit else ""
    run = f" in {ci.run_url}" if ci.run_url else ""
    return (f"The scheduled monitor passed{at}{run}: closing. A later failure opens a new "
            "issue.")


def issue_body(report: str | None, run_url: str, retrained: str) -> str:
    text = (report or "").strip()
    if len(text) > MAX_REPORT:
        text = text[:MAX_REPORT] + "\n\n… (cut: the whole report is in the run's artifacts)"
    return "\n".join([
        MARKER, "## mlspec: production monitoring failed", "",
        f"The scheduled monitor job failed{f' in {run_url}' if run_url else ''}.",
        f"Retrain: {retrained}.", "",
        "This issue is updated on every failure (never one per run); close it once resolved.",
        "", "### The monitor's output", "",
        _fenced(text) if text else "The monitor job left no output (it failed before "
                                   "`mlspec monitor` ran).", ""])


def _fenced(text: str) -> str:
    """Plain text as a markdown code block whose fence no line of it can close."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def alert(report: Path | None, ref: str, *, retrain_run: bool, issue: bool,
          token_variable: str = DEFAULT_TOKEN_VARIABLE,
          env: Mapping[str, str] | None = None, passed: bool = False) -> Outcome:
    """Start the retrain and upsert the issue; exit 1 when either failed (both are tried).
    With `passed` (the monitor-passed job): close the open issue, if any, and nothing else."""
    found = ci_from_env(os.environ if env is None else env, token_variable)
    if isinstance(found, Diagnostic):
        return Outcome(code=2, diagnostics=[found])
    ci, api = found, Api(found.platform, found.api)
    if passed:
        return _passed(ci, api, token_variable)
    diags: list[Diagnostic] = []
    lines: list[str] = []
    retrained = "not asked (on_failure.retrain: false)"
    if retrain_run:
        try:
            retrained = "started: " + retrain(ci, api, ref)
        except ApiError as err:
            retrained = "could not be started (see the job log)"
            diags.append(Diagnostic.nowhere(str(err), "alert.retrain",
                                            _hint(ci, "actions: write")))
        lines.append(f"retrain: {retrained}")
    if issue:
        text = report.read_text(errors="replace") if report and report.is_file() else None
        if not ci.issue_token:
            diags.append(_no_issue_token(token_variable))
        else:
            try:
                how, number = upsert_issue(ci, api, issue_body(text, ci.run_url, retrained),
                                           f"Failed again: {ci.run_url or 'see the pipeline'}")
                lines.append(f"issue #{number} {how} (label {LABEL})")
            except ApiError as err:
                diags.append(Diagnostic.nowhere(str(err), "alert.issue",
                                                _hint(ci, "issues: write")))
    return Outcome(code=1 if diags else 0, diagnostics=diags, text="\n".join(lines))


def _passed(ci: Ci, api: Api, token_variable: str) -> Outcome:
    if not ci.issue_token:
        return Outcome(code=1, diagnostics=[_no_issue_token(token_variable)])
    try:
        number = close_issue(ci, api, passed_note(ci))
    except ApiError as err:
        return Outcome(code=1, diagnostics=[Diagnostic.nowhere(str(err), "alert.issue",
                                                               _hint(ci, "issues: write"))])
    return Outcome(text=f"no open issue labelled {LABEL}: nothing to close" if number is None
                   else f"issue #{number} closed: the monitor passed")


def _no_issue_token(token_variable: str) -> Diagnostic:
    return Diagnostic.nowhere(
        f"no token to write issues: the CI/CD variable {token_variable} is not set",
        "alert.issue-token", "add a project access token with api scope as a masked "
        f"variable {token_variable} (or name another one in ci.secrets.gitlab_token)")


def _hint(ci: Ci, permission: str) -> str:
    if ci.platform == "github":
        return f"the job needs `permissions: {permission}` (the generated job has it)"
    return "check the token's scope (api) and that the project allows pipeline triggers"
