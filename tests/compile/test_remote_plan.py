"""The remote store in the generated pipelines (issue 13), at the plan and in the rendered files:
which jobs pull and push, with which credentials, and that a fork never pushes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile import BASE, compile_spec, github, mutated

from mlspec.compile.model import CiVar, Job, Plan, SecretVar

HERE = Path(__file__).resolve().parent
FORK_GUARD = ("github.event_name != 'pull_request' || "
              "github.event.pull_request.head.repo.full_name == github.repository")


def _plan(spec: dict[str, Any], tmp: Path, targets: str | None = None) -> Plan:
    from mlspec.compile.planner import build_plan
    from mlspec.spec.loader import load_spec

    assert compile_spec(tmp, spec, targets) is not None, "mlspec refused the spec"
    return build_plan(load_spec(tmp / "mlspec.yaml"))


def _remote(remote: str, **secrets: str) -> dict[str, Any]:
    def change(s: dict[str, Any]) -> None:
        s["project"]["remote"] = remote
        s["ci"]["secrets"].update(secrets)
        s["inference"]["monitor"].update(
            drift={"reference": "model/m.pkl", "live": "logs/live.jsonl"},
            metrics="monitor/metrics.json")
    return mutated(change)


def _pushes(job: Job) -> list[str]:
    return [c.run for c in job.commands if c.run.startswith("mlspec push")]


def test_no_remote_no_change(tmp_path: Path) -> None:
    plan = _plan(BASE, tmp_path)
    for flow in plan.flows.values():
        for job in flow.jobs:
            assert not _pushes(job) and job.secrets_environment is None
            assert not any(c.same_repo_only for c in job.commands)
            assert not any("MLSPEC_REGISTRY_PASSWORD" in c.env for c in job.commands)


def test_secrets_reach_only_the_commands_that_use_the_remote(tmp_path: Path) -> None:
    spec = _remote("oci://registry.example.com/acme/store", remote_username="STORE_USER",
                   remote_password="STORE_TOKEN")
    plan = _plan(spec, tmp_path)
    exp, rel, sched = (plan.flows[f] for f in ("experiment", "release", "schedule"))
    creds = {"MLSPEC_REGISTRY_USER": SecretVar("STORE_USER"),
             "MLSPEC_REGISTRY_PASSWORD": SecretVar("STORE_TOKEN")}
    for job in (exp.job("step-prep"), exp.job("step-train"), rel.job("verify")):
        assert _pushes(job) == [f"mlspec push {' '.join(job.steps)}"], job.id
        push = job.commands[-1]
        assert push.same_repo_only and push.env == creds
        assert job.secrets_environment == "mlspec-remote"
        for c in job.commands:  # validate, compile --check: no secret; report reads records
            talks = any(line.lstrip().startswith((
                "mlspec run", "mlspec push", "mlspec pull", "mlspec report"))
                for line in c.run.splitlines())  # the release tag's `pull --release`
            assert (c.env.get("MLSPEC_REGISTRY_PASSWORD") is not None) == talks, c.run
    monitor = sched.job("monitor")
    assert monitor.commands[0].run == "mlspec pull train" and not _pushes(monitor)
    assert monitor.commands[0].env == creds
    assert monitor.commands[1].env == creds  # mlspec monitor records the run in the remote
    assert not _pushes(sched.job("refresh"))
    # the spec declares a monitor: `mlspec report` shows the production records of the remote
    report = exp.job("report")
    assert report.secrets_environment == "mlspec-remote" and not _pushes(report)
    assert [c.run for c in report.commands if c.env] == [
        'mlspec report --base "origin/$BASE_REF" -o report.md']
    assert all(c.env == creds for c in report.commands if c.env)
    for job in (exp.job("check"), exp.job("verify"), exp.job("comment"), rel.job("publish")):
        assert not _pushes(job) and job.secrets_environment is None, job.id
        assert not any(isinstance(v, SecretVar) for c in job.commands for v in c.env.values())
    from mlspec.compile import checklist

    assert any("STORE_TOKEN, STORE_USER to the environment 'mlspec-remote'" in line
               for line in checklist.github(plan)), checklist.github(plan)
    assert any("STORE_TOKEN, STORE_USER" in line and "not protected" in line
               for line in checklist.gitlab(plan)), checklist.gitlab(plan)
    # the deploy job gets the image's secret, never the remote's
    assert rel.job("deploy-staging").secrets == {"REGISTRY_TOKEN": "REGISTRY_TOKEN"}


def test_own_registry_token_and_packages_permission(tmp_path: Path) -> None:
    spec = _remote("oci://ghcr.io/acme/store")
    spec["ci"] = {"targets": ["github"]}
    plan = _plan(spec, tmp_path, "github,docker")
    assert compile_spec(tmp_path / "all", spec) is None  # --target gitlab: refused
    step = plan.flows["experiment"].job("step-train")
    assert step.commands[-1].env == {"MLSPEC_REGISTRY_USER": CiVar("registry_user"),
                                     "MLSPEC_REGISTRY_PASSWORD": CiVar("registry_password")}
    assert step.secrets_environment is None
    scopes = {(p.scope, p.access) for p in step.permissions}
    assert ("packages", "write") in scopes
    monitor = plan.flows["schedule"].job("monitor")  # pulls, and records the monitor run
    assert {(p.scope, p.access) for p in monitor.permissions} >= {("packages", "write")}
    refresh = plan.flows["schedule"].job("refresh")  # pulls only
    assert ("packages", "read") in {(p.scope, p.access) for p in refresh.permissions}
    assert ("packages", "write") not in {(p.scope, p.access) for p in refresh.permissions}
    report = plan.flows["experiment"].job("report")  # reads the monitor records
    assert ("packages", "read") in {(p.scope, p.access) for p in report.permissions}
    assert [c.run.split()[1] for c in report.commands if c.env] == ["report"]
    from mlspec.compile import checklist

    assert any("Manage Actions access" in line for line in checklist.github(plan))


def test_file_remote_needs_no_credentials(tmp_path: Path) -> None:
    plan = _plan(_remote("file:///shared/store"), tmp_path)
    step = plan.flows["experiment"].job("step-train")
    assert _pushes(step) == ["mlspec push train"]
    assert all("MLSPEC_REGISTRY_USER" not in c.env for c in step.commands)
    assert step.secrets_environment is None and len(step.permissions) == 1


@pytest.mark.parametrize(("remote", "targets", "refused"), [
    ("oci://registry.example.com/a/b", ["github"], ["github"]),
    ("oci://ghcr.io/a/b", ["github", "gitlab"], ["gitlab"]),
    ("oci://registry.gitlab.com/a/b", ["github", "gitlab"], ["github"]),
    ("oci://registry.gitlab.com/a/b", ["gitlab"], []),
])
def test_missing_credentials_are_a_located_diagnostic(tmp_path: Path, remote: str,
                                                      targets: list[str],
                                                      refused: list[str]) -> None:
    """validate and compile say spec.remote-credentials at project.remote, per target that
    lacks them; run, graph, push and pull still work on a developer's machine."""
    from conftest import mlspec

    spec = _remote(remote)
    spec["ci"] = {"targets": targets, "secrets": {"registry_password": "REGISTRY_TOKEN"}}
    compile_spec(tmp_path, spec)
    res = mlspec("validate", cwd=tmp_path)
    found = re.findall(r"^mlspec.yaml:(\d+):\d+: the (\w+) pipeline pulls from and pushes to "
                       r".* \[spec.remote-credentials\]$", res.stderr, re.M)
    assert [t for _, t in found] == refused, res.stderr
    assert all(int(line) > 0 for line, _ in found)
    assert res.returncode == (2 if refused else 0), res.stderr
    res = mlspec("compile", cwd=tmp_path)
    assert res.returncode == (2 if refused else 0), res.stderr
    assert ("remote_password: SECRET_NAME" in res.stderr) == bool(refused)
    assert mlspec("graph", cwd=tmp_path).returncode == 0


def test_username_alone_is_refused(tmp_path: Path) -> None:
    spec = _remote("file:///x", remote_username="U")
    assert compile_spec(tmp_path, spec) is None


def _steps_of(doc: dict[str, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = doc["jobs"][job]["steps"]
    return steps


def test_github_push_step_is_guarded_for_forks(tmp_path: Path) -> None:
    """Parsed as GitHub does: every `mlspec push` step carries the fork guard, no other step
    does, and the secrets come from the no-deployment environment."""
    spec = _remote("oci://registry.example.com/acme/store", remote_password="STORE_TOKEN")
    files = compile_spec(tmp_path, spec)
    assert files is not None
    wf = github(files, "experiment")
    pushed = 0
    for job_id, job in wf["jobs"].items():
        for step in job["steps"]:
            run = step.get("run", "")
            if run.startswith("mlspec push"):
                pushed += 1
                assert step["if"] == "${{ " + FORK_GUARD + " }}", job_id
                assert step["env"]["MLSPEC_REGISTRY_PASSWORD"] == "${{ secrets.STORE_TOKEN }}"
                assert step["env"]["MLSPEC_REGISTRY_USER"] == "${{ github.actor }}"
                assert job["environment"] == {"name": "mlspec-remote", "deployment": False}
            else:
                assert FORK_GUARD not in str(step.get("if", "")), (job_id, step)
                if "uses" in step or run.startswith("pip install"):
                    assert "secrets." not in str(step.get("env", {})), (job_id, step)
    assert pushed == 2  # step-prep, step-train
    release = github(files, "release")
    verify = _steps_of(release, "verify")
    assert [s["if"] for s in verify if s.get("run", "").startswith("mlspec push")] == [
        "${{ " + FORK_GUARD + " }}"]
    assert "STORE_TOKEN" not in str(release["jobs"]["deploy-staging"])


def test_gitlab_push_is_skipped_in_a_fork_merge_request(tmp_path: Path) -> None:
    """The GitLab script wraps the push in a test of the merge request's source project; run
    with bash under each set of variables."""
    import subprocess

    spec = _remote("oci://registry.example.com/acme/store", remote_password="STORE_TOKEN")
    files = compile_spec(tmp_path, spec)
    assert files is not None
    doc = yaml.safe_load(files[".gitlab-ci.yml"])
    job = doc["experiment:step-train"]
    assert job["variables"]["MLSPEC_REGISTRY_PASSWORD"] == "$STORE_TOKEN"
    assert job["variables"]["MLSPEC_REGISTRY_USER"] == "$GITLAB_USER_LOGIN"
    push = next(line for line in job["script"] if "mlspec push" in line)
    script = push.replace("mlspec push train", "echo PUSHED")
    cases = {(): True,  # a branch, tag or schedule pipeline
             (("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "42"), ("CI_PROJECT_ID", "42"),
              ("CI_MERGE_REQUEST_PROJECT_ID", "42")): True,
             (("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "7"), ("CI_PROJECT_ID", "42"),
              ("CI_MERGE_REQUEST_PROJECT_ID", "42")): False,  # run in the parent project
             (("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "7"), ("CI_PROJECT_ID", "7"),
              ("CI_MERGE_REQUEST_PROJECT_ID", "42")): False}  # run in the fork
    for env, pushes in cases.items():
        out = subprocess.run(["bash", "-euc", script], env=dict(env, PATH="/usr/bin:/bin"),
                             capture_output=True, text=True, check=True).stdout
        assert ("PUSHED" in out) == pushes, (env, out)
    assert "STORE_TOKEN" not in str(doc["release:deploy-staging"])


def test_goldens_with_a_remote_exist() -> None:
    for name in ("remote", "remote-ghcr"):
        assert (HERE / "expected" / name / ".github" / "workflows").is_dir()
    assert (HERE / "expected" / "remote" / ".gitlab-ci.yml").is_file()


def test_a_monitor_without_drift_still_records_its_run(tmp_path: Path) -> None:
    """No drift reference to pull, but `mlspec monitor` records the run in the remote under
    the deployed release: the credentials on that command, and the tags (full history)."""
    spec = _remote("oci://ghcr.io/acme/store")
    spec["ci"] = {"targets": ["github"]}
    spec["inference"]["monitor"].pop("drift")
    spec["inference"]["monitor"]["gates"] = []
    plan = _plan(spec, tmp_path, "github,docker")
    monitor = plan.flows["schedule"].job("monitor")
    assert not any(c.run.startswith("mlspec pull") for c in monitor.commands)
    assert monitor.commands[0].env["MLSPEC_REGISTRY_PASSWORD"] == CiVar("registry_password")
    assert monitor.full_history
    assert ("packages", "write") in {(p.scope, p.access) for p in monitor.permissions}
