"""A failing monitor in the generated schedule pipeline, run for real (act, gitlab-ci-local):
its `monitor-failed` job starts the retrain and opens, then updates, one issue.

The GitHub and GitLab APIs are a LOCAL MOCK (tests/mock_ci_api.py: a python http.server on
127.0.0.1 that records each request and keeps issues in memory), reached through the standard
CI variables the jobs read (GITHUB_API_URL, CI_API_V4_URL). What the mock records is what the
generated job sent; whether GitHub/GitLab accept it is not tested here. Everything else is
the real pipeline: the generated install line, the monitor command (a script that prints its
finding and exits 1, as a failed gate does, under `mlspec monitor`), the artifact hand-over,
`mlspec alert`.
Each pipeline runs three times: the second failure must update the issue, not open a second
one; then a passing monitor's `monitor-passed` job closes it and starts no retrain.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git
from mock_ci_api import mock_api
from test_github_act import _succeeded, act, pr_clone  # noqa: F401  (pr_clone: a fixture)
from test_gitlab_local import Project, job_log, project, verdicts  # noqa: F401

pytestmark = pytest.mark.slow

FAILING_MONITOR = """\
import sys

print("psi_max = 0.31 > 0.2 (run RUN)")
sys.exit(1)
"""


PASSING_MONITOR = """\
print("psi_max = 0.05 <= 0.2")
"""


def _failing_monitor(repo: Path, run: int) -> None:
    (repo / "src" / "monitor.py").write_text(FAILING_MONITOR.replace("RUN", str(run)))


def test_github_schedule_monitor_failure_dispatches_retrain_and_upserts_one_issue(
        pr_clone: Path, tmp_path: Path, wheel_dir: Path) -> None:  # noqa: F811
    repo = {"full_name": "acme/iris", "name": "iris", "owner": {"login": "acme"}}
    with mock_api() as api:
        for run in (1, 2):
            _failing_monitor(pr_clone, run)
            store = tmp_path / f"store-{run}"
            res = act(pr_clone, "schedule", {"schedule": "0 * * * *", "repository": repo},
                      "mlspec-schedule.yml", store, wheel_dir,
                      "--env", f"GITHUB_API_URL={api.url}", "-s", "GITHUB_TOKEN=test-token",
                      name=f"monitor fails ({run})")
            log = res.stdout + res.stderr
            (tmp_path / f"act-{run}.log").write_text(log)
            assert res.returncode != 0, "the monitor job failed, so the run fails"
            assert "the monitor failed: retrain and update the issue" in _succeeded(log), \
                log[-6000:]
            dispatches = api.calls("POST", r"^/repos/acme/iris/actions/workflows/"
                                           r"mlspec-schedule\.yml/dispatches$")
            assert len(dispatches) == run, log[-6000:]
            assert dispatches[-1].body == {"ref": "main", "inputs": {"mode": "refresh"}}
            assert dispatches[-1].headers["Authorization"] == "Bearer test-token"
            assert len(api.issues) == 1, api.issues
            assert f"(run {run})" in api.issues[0]["body"]  # the monitor's report, latest
        assert len(api.calls("POST", r"^/repos/acme/iris/issues$")) == 1  # created once
        assert len(api.calls("PATCH", r"^/repos/acme/iris/issues/1$")) == 1  # then updated
        assert len(api.comments) == 1
        assert "refresh the data and retrain" not in log  # the monitor's run never retrains
        # the monitor passes again: the issue is closed with a comment, nothing is dispatched
        (pr_clone / "src" / "monitor.py").write_text(PASSING_MONITOR)
        res = act(pr_clone, "schedule", {"schedule": "0 * * * *", "repository": repo},
                  "mlspec-schedule.yml", tmp_path / "store-3", wheel_dir,
                  "--env", f"GITHUB_API_URL={api.url}", "-s", "GITHUB_TOKEN=test-token",
                  name="monitor passes")
        log = res.stdout + res.stderr
        (tmp_path / "act-3.log").write_text(log)
        assert res.returncode == 0, log[-6000:]
        assert "the monitor passed: close the issue" in _succeeded(log), log[-6000:]
        assert api.issues[0]["state"] == "closed", api.issues
        assert len(api.comments) == 2 and "passed" in api.comments[-1][1], api.comments
        assert len(api.calls("POST", r"/dispatches$")) == 2  # no third retrain


def test_gitlab_schedule_monitor_failure_triggers_retrain_and_upserts_one_issue(
        project: Project) -> None:  # noqa: F811
    work = project.work
    git("checkout", "-q", "-B", "monitor-fails", "main", cwd=work)
    try:
        with mock_api() as api:
            for run in (1, 2):
                _failing_monitor(work, run)
                git("commit", "-q", "-am", f"a monitor that fails ({run})", cwd=work)
                res = project.run(
                    "--variable", "CI_PIPELINE_SOURCE=schedule",
                    "--variable", "MLSPEC_SCHEDULE=monitor",
                    "--variable", f"CI_API_V4_URL={api.url}/api/v4",
                    "--variable", "CI_PROJECT_ID=42", "--variable", "CI_JOB_TOKEN=job-token",
                    "--variable", "MLSPEC_GITLAB_TOKEN=glpat-test", name=f"monitor fails {run}")
                out = res.stdout + res.stderr
                assert res.returncode != 0, out[-6000:]
                assert verdicts(out) == {"schedule:monitor": "FAIL",
                                         "schedule:monitor-failed": "PASS"}, out[-6000:]
                triggers = api.calls("POST", r"^/projects/42/trigger/pipeline$")
                assert len(triggers) == run, job_log(out, "schedule:monitor-failed")
                assert triggers[-1].body == {"token": "job-token", "ref": "main",
                                             "variables[MLSPEC_SCHEDULE]": "refresh"}
                assert len(api.issues) == 1, api.issues
                assert f"(run {run})" in api.issues[0]["description"]
            created = api.calls("POST", r"^/projects/42/issues$")
            assert len(created) == 1 and created[0].headers["PRIVATE-TOKEN"] == "glpat-test"
            assert len(api.calls("PUT", r"^/projects/42/issues/1$")) == 1
            # the monitor passes again: the issue is closed with a note, no retrain
            (work / "src" / "monitor.py").write_text(PASSING_MONITOR)
            git("commit", "-q", "-am", "a monitor that passes", cwd=work)
            res = project.run(
                "--variable", "CI_PIPELINE_SOURCE=schedule",
                "--variable", "MLSPEC_SCHEDULE=monitor",
                "--variable", f"CI_API_V4_URL={api.url}/api/v4",
                "--variable", "CI_PROJECT_ID=42", "--variable", "CI_JOB_TOKEN=job-token",
                "--variable", "MLSPEC_GITLAB_TOKEN=glpat-test", name="monitor passes")
            out = res.stdout + res.stderr
            assert res.returncode == 0, out[-6000:]
            assert verdicts(out).get("schedule:monitor-passed") == "PASS", out[-6000:]
            assert api.issues[0]["state"] == "closed", api.issues
            assert "passed" in api.comments[-1][1], api.comments
            assert len(api.calls("POST", r"^/projects/42/trigger/pipeline$")) == 2
    finally:
        git("checkout", "-q", "-f", "feature", cwd=work)
