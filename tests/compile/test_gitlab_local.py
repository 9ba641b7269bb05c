"""The generated .gitlab-ci.yml run for real by gitlab-ci-local (shell executor, isolated builds).

A temporary clone of examples/iris (jobs install mlspec from this checkout: ci.install puts the
test venv first on PATH, since mlspec is not on PyPI here) runs:

- `--list` for each event: which jobs `workflow: rules` + job rules select;
- the merge-request pipeline, every job green; then again with unchanged inputs, where the
  steps come from the GitLab cache instead of being retrained;
- the tag pipeline's verify job;
- a deliberately failing gate, which fails the pipeline at the gate (report) job.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BIN, copy_example, git, mlspec, need, tool

pytestmark = pytest.mark.slow

VERSION = "4.73.0"
# predefined variables the tests set (quiets gitlab-ci-local's warning; pass it only once)
QUIET = ["--ignore-predefined-vars",
         "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_COMMIT_REF_PROTECTED,CI_PROJECT_ID"]
MR = ["--variable", "CI_PIPELINE_SOURCE=merge_request_event",
      "--variable", "CI_MERGE_REQUEST_IID=1",
      "--variable", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main",
      "--unset-variable", "CI_COMMIT_BRANCH"]
TAG = ["--variable", "CI_COMMIT_TAG=v1.0.0", "--unset-variable", "CI_COMMIT_BRANCH",
       "--variable", "CI_COMMIT_REF_PROTECTED=true"]
MR_JOBS = ["experiment:check", "experiment:step-prepare", "experiment:sweep-train: [50]",
           "experiment:sweep-train: [100]", "experiment:sweep-train: [200]",
           "experiment:select-train", "experiment:verify", "experiment:report"]


@dataclass
class Project:
    exe: str
    upstream: Path
    work: Path

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.exe, "--force-shell-executor", "--shell-isolation",
             "--no-artifacts-to-source", "--no-color", "--max-job-name-padding", "0", *QUIET,
             *args],
            cwd=self.work, capture_output=True, text=True, timeout=timeout)

    def listed(self, *args: str) -> list[str]:
        res = subprocess.run([self.exe, "--list", "--no-color", *QUIET, *args], cwd=self.work,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        lines = res.stdout.splitlines()
        head = next(i for i, line in enumerate(lines) if line.startswith("name "))
        return [re.split(r"\s{2,}", line.strip())[0] for line in lines[head + 1:] if line.strip()]

    def artifact(self, job: str, rel: str) -> Path:
        return self.work / ".gitlab-ci-local" / "artifacts" / job.replace(":", "Og") / rel


def job_log(out: str, job: str) -> str:
    """The lines a job printed (gitlab-ci-local prefixes each with the job name)."""
    return "\n".join(line[len(job):] for line in out.splitlines() if line.startswith(job + " "))


def verdicts(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        m = re.match(r"^\s*(PASS|FAIL)\s+(.+?)\s*$", line)
        if m:
            found[m.group(2)] = m.group(1)
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    exe = tool("gitlab-ci-local")
    tool("rsync")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    need(version == VERSION, f"gitlab-ci-local {VERSION} is needed, found {version!r}")
    base = tmp_path_factory.mktemp("gitlab")
    upstream = copy_example("iris", base / "upstream", commit=False)
    spec = upstream / "mlspec.yaml"
    text = spec.read_text()
    assert "\nci:\n" in text
    # jobs install mlspec from this checkout (not on PyPI here): the test venv first on PATH
    spec.write_text(text.replace("\nci:\n", f"\nci:\n  install: 'export PATH=\"{BIN}:$PATH\"'\n"))
    res = mlspec("compile", cwd=upstream)
    assert res.returncode == 0, res.stdout + res.stderr
    git("add", "-A", cwd=upstream)
    git("commit", "-q", "-m", "iris with a local install", cwd=upstream)
    work = base / "work"
    git("clone", "-q", str(upstream), str(work), cwd=base)
    git("config", "user.email", "ci@example.com", cwd=work)
    git("config", "user.name", "mlspec tests", cwd=work)
    git("checkout", "-q", "-b", "feature", cwd=work)
    (work / "NOTES.md").write_text("an experiment\n")
    git("add", "NOTES.md", cwd=work)
    git("commit", "-q", "-m", "notes", cwd=work)
    yield Project(exe, upstream, work)


def test_rules_pick_one_flow_per_event(project: Project) -> None:
    mr = project.listed(*MR)
    assert mr == MR_JOBS  # no MR note: no token variable is configured
    token = ["--variable", "CI_PROJECT_ID=42",
             "--variable", "MLSPEC_GITLAB_TOKEN=x"]
    same = project.listed(*MR, *token, "--variable", "CI_MERGE_REQUEST_SOURCE_PROJECT_ID=42")
    assert same == [*MR_JOBS, "experiment:comment"]
    fork = project.listed(*MR, *token, "--variable", "CI_MERGE_REQUEST_SOURCE_PROJECT_ID=7")
    assert fork == MR_JOBS  # never a token in a pipeline of a fork's merge request
    web = project.listed("--variable", "CI_PIPELINE_SOURCE=web",
                         "--variable", "MLSPEC_GITLAB_TOKEN=x")
    assert web == MR_JOBS
    assert project.listed(*TAG) == ["release:verify", "release:deploy-production",
                                    "release:publish"]
    unprotected = ["--variable", "CI_COMMIT_TAG=v1.0.0", "--unset-variable", "CI_COMMIT_BRANCH"]
    assert project.listed(*unprotected) == []
    other_tag = ["--variable", "CI_COMMIT_TAG=nightly", "--unset-variable", "CI_COMMIT_BRANCH",
                 "--variable", "CI_COMMIT_REF_PROTECTED=true"]
    assert project.listed(*other_tag) == []
    main = ["--variable", "CI_COMMIT_BRANCH=main"]
    assert project.listed(*main) == ["release:verify"]  # no deploy from an unprotected branch
    assert project.listed(*main, "--variable", "CI_COMMIT_REF_PROTECTED=true") == [
        "release:verify", "release:deploy-staging"]
    assert project.listed() == []  # a push to the feature branch: the MR pipeline covers it
    sched = ["--variable", "CI_PIPELINE_SOURCE=schedule"]
    assert project.listed(*sched) == ["schedule:refresh"]
    assert project.listed(*sched, "--variable", "MLSPEC_SCHEDULE=monitor") == [
        "schedule:monitor"]


def test_merge_request_pipeline_runs_green_then_from_cache(project: Project) -> None:
    first = project.run(*MR)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-6000:]
    assert verdicts(out) == dict.fromkeys(MR_JOBS, "PASS"), out[-6000:]
    assert "▶ prepare" in job_log(out, "experiment:step-prepare")
    for n in ("50", "100", "200"):
        assert "▶ train" in job_log(out, f"experiment:sweep-train: [{n}]")
    report = project.artifact("experiment:report", "report.md").read_text()
    assert "f1_macro" in report
    dotenv = "\n".join(p.read_text() for p in project.artifact(
        "experiment:report", ".gitlab-ci-reports/dotenv").glob("*"))
    assert re.search(r"^MLSPEC_METRIC_F1_MACRO=\d", dotenv, re.M), dotenv
    assert "MLSPEC_GATES=pass" in dotenv
    lock = project.artifact("experiment:select-train", "mlspec.lock").read_text()
    model = project.artifact("experiment:select-train", "model/model.pkl").read_bytes()

    second = project.run(*MR)
    out2 = second.stdout + second.stderr
    assert second.returncode == 0, out2[-6000:]
    assert verdicts(out2) == dict.fromkeys(MR_JOBS, "PASS")
    prepare = job_log(out2, "experiment:step-prepare")
    assert "imported cache" in prepare and "prepare: up to date, skipped" in prepare
    assert "▶" not in prepare
    for job in [f"experiment:sweep-train: [{n}]" for n in ("50", "100", "200")] + [
            "experiment:select-train", "experiment:report"]:
        log = job_log(out2, job)
        assert "▶" not in log, f"{job} recomputed a step:\n{log}"
    for n in ("50", "100", "200"):
        assert "train: up to date, skipped" in job_log(out2, f"experiment:sweep-train: [{n}]")
    # the verify job alone reruns everything: that is its point
    assert "▶ train" in job_log(out2, "experiment:verify")
    assert project.artifact("experiment:select-train", "mlspec.lock").read_text() == lock
    assert project.artifact("experiment:select-train", "model/model.pkl").read_bytes() == model


def test_tag_pipeline_runs_its_verify_job(project: Project) -> None:
    git("checkout", "-q", "main", cwd=project.work)
    try:
        git("tag", "-a", "v1.0.0", "-m", "release 1.0.0", cwd=project.work)
        res = project.run(*TAG, "release:verify")
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-6000:]
        assert verdicts(out) == {"release:verify": "PASS"}
        log = job_log(out, "release:verify")
        assert "mlspec run --verify" in log and "▶ train" in log
        for rel in ("model/model.pkl", "metrics.json", "mlspec.lock"):
            assert project.artifact("release:verify", rel).is_file()
    finally:
        git("checkout", "-q", "feature", cwd=project.work)


def test_failing_gate_fails_the_pipeline_at_the_gate_job(project: Project) -> None:
    git("checkout", "-q", "-b", "impossible-gate", "feature", cwd=project.work)
    try:
        model = project.work / "specs" / "model.yaml"
        model.write_text(model.read_text().replace(
            "gates:\n", "gates:\n  - accuracy >= 1.01\n", 1))
        res = mlspec("compile", cwd=project.work)
        assert res.returncode == 0, res.stdout + res.stderr
        git("commit", "-q", "-am", "an impossible gate", cwd=project.work)
        run = project.run(*MR, "--needs", "experiment:report")
        out = run.stdout + run.stderr
        assert run.returncode != 0, out[-6000:]
        got = verdicts(out)
        assert got.pop("experiment:report") == "FAIL", out[-6000:]
        assert got and set(got.values()) == {"PASS"}, got
        log = job_log(out, "experiment:report")
        assert "accuracy >= 1.01" in log
        assert project.artifact("experiment:report", "report.md").is_file()  # when: always
    finally:
        git("checkout", "-q", "-f", "feature", cwd=project.work)


def test_schedule_pipeline_refreshes_and_retrains(project: Project) -> None:
    git("checkout", "-q", "main", cwd=project.work)
    try:
        res = project.run("--variable", "CI_PIPELINE_SOURCE=schedule")
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-6000:]
        assert verdicts(out) == {"schedule:refresh": "PASS"}
        log = job_log(out, "schedule:refresh")
        assert "▶ prepare" in log and "gates" in log
        assert project.artifact("schedule:refresh", "report.md").is_file()
    finally:
        git("checkout", "-q", "feature", cwd=project.work)
