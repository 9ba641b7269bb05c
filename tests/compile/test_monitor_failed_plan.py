"""inference.monitor.on_failure in the plan and the generated files (no pipeline runs here:
tests/compile/test_monitor_failed_pipelines.py runs them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, mlspec

from mlspec.compile.planner import build_plan
from mlspec.spec.loader import load_spec


def _iris(tmp_path: Path, on_failure: str | None) -> Path:
    shutil.copytree(EXAMPLES / "iris", tmp_path / "iris", ignore=shutil.ignore_patterns(".venv"))
    spec = tmp_path / "iris" / "mlspec.yaml"
    text = spec.read_text()
    anchor = "command: python src/monitor.py}"
    assert anchor in text
    if on_failure is not None:
        text = text.replace(anchor, f"command: python src/monitor.py, on_failure: {on_failure}}}")
    spec.write_text(text)
    return spec


def _schedule(spec: Path) -> dict:  # type: ignore[type-arg]
    from mlspec.compile.targets.github.workflow import render

    text = render(build_plan(load_spec(spec)))[".github/workflows/mlspec-schedule.yml"]
    data: dict = yaml.safe_load(text)  # type: ignore[type-arg]
    return data


def test_default_both_on_permissions_only_on_the_alert_job(tmp_path: Path) -> None:
    wf = _schedule(_iris(tmp_path, None))
    assert wf["permissions"] == {}
    jobs = wf["jobs"]
    assert jobs["monitor-failed"]["permissions"] == {"contents": "read", "actions": "write",
                                                     "issues": "write"}
    assert jobs["monitor-passed"]["permissions"] == {"contents": "read", "issues": "write"}
    assert all(j["permissions"] == {"contents": "read"} for k, j in jobs.items()
               if k not in ("monitor-failed", "monitor-passed"))
    assert jobs["monitor-failed"]["needs"] == ["monitor"]
    assert jobs["monitor-failed"]["if"].startswith("${{ failure() && ")
    # a passing monitor closes the issue: needs it (GitHub's implicit success()), same triggers
    passed = jobs["monitor-passed"]
    assert passed["needs"] == ["monitor"] and "failure()" not in passed["if"]
    triggers = passed["if"].removeprefix("${{ ").removesuffix(" }}").strip("()")
    assert triggers in jobs["monitor"]["if"]
    assert passed["steps"][-1]["run"] == "mlspec alert --passed"
    # a dispatched retrain (mode refresh) runs the refresh job, never the monitor: no loop
    assert "inputs.mode == 'refresh'" in jobs["refresh"]["if"]
    assert "refresh" not in jobs["monitor"]["if"] and "refresh" not in jobs["monitor-failed"]["if"]
    assert wf[True]["workflow_dispatch"]["inputs"]["mode"]["options"] == ["all", "refresh"]
    run = jobs["monitor-failed"]["steps"][-1]["run"]
    assert run == "mlspec alert --ref main --report monitor-report.txt"
    assert "${{" not in run


def test_issue_only_has_no_dispatch_mode_and_no_actions_permission(tmp_path: Path) -> None:
    wf = _schedule(_iris(tmp_path, "{retrain: false}"))
    job = wf["jobs"]["monitor-failed"]
    assert job["permissions"] == {"contents": "read", "issues": "write"}
    assert job["steps"][-1]["run"].endswith("--no-retrain")
    assert "inputs" not in (wf[True]["workflow_dispatch"] or {})
    assert "monitor-passed" in wf["jobs"]


def test_retrain_only_has_no_issue_to_close(tmp_path: Path) -> None:
    wf = _schedule(_iris(tmp_path, "{issue: false}"))
    assert "monitor-passed" not in wf["jobs"]
    assert "issues" not in wf["jobs"]["monitor-failed"]["permissions"]


def test_both_off_no_alert_job(tmp_path: Path) -> None:
    wf = _schedule(_iris(tmp_path, "{retrain: false, issue: false}"))
    assert "monitor-failed" not in wf["jobs"] and "monitor-passed" not in wf["jobs"]


def test_gitlab_passed_job_runs_on_success_with_the_named_token(tmp_path: Path) -> None:
    from mlspec.compile.targets.gitlab import TARGET

    spec = _iris(tmp_path, None)
    text = spec.read_text()
    old = "secrets: {registry_password: REGISTRY_TOKEN}"
    assert old in text
    spec.write_text(text.replace(old, old[:-1] + ", gitlab_token: GL_ISSUES}"))
    plan = build_plan(load_spec(spec))
    data = yaml.safe_load(TARGET.render(plan)[".gitlab-ci.yml"])
    job, failed = data["schedule:monitor-passed"], data["schedule:monitor-failed"]
    assert job["stage"] == failed["stage"] == "alert" and job["needs"] == ["schedule:monitor"]
    assert [r.get("when") for r in job["rules"]] == [None]  # on_success: the monitor passed
    assert {r["if"] for r in job["rules"]} == {r["if"] for r in failed["rules"]}
    assert job["script"] == ["mlspec alert --passed --token-variable GL_ISSUES"]
    assert failed["script"][-1].endswith("--token-variable GL_ISSUES")


@pytest.mark.parametrize("bad, message", [
    ("{retrain: maybe}", "must be a boolean"),
    ("{issues: true}", "did you mean 'issue'"),
])
def test_bad_on_failure_is_a_located_diagnostic(tmp_path: Path, bad: str, message: str) -> None:
    spec = _iris(tmp_path, bad)
    res = mlspec("validate", "-f", str(spec), cwd=spec.parent)
    assert res.returncode == 2
    assert "mlspec.yaml:" in res.stderr and message in res.stderr, res.stderr
