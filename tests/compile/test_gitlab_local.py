"""The generated .gitlab-ci.yml run for real by gitlab-ci-local (shell executor, isolated builds),
as a user's first push would run it.

mlspec is absent from the jobs' PATH (the test venv and every directory holding an `mlspec`
executable are removed). Each pipeline gets a fresh virtualenv first on PATH and
`PIP_FIND_LINKS` = a folder holding only the wheel built from this checkout; `ci.install` is
unset, so the generated line `pip install mlspec-gitops==<version>` is what installs mlspec
(dependencies come from the normal package index): a wrong name or version fails the jobs.
The clone's `origin` is a local bare repository (jobs fetch the base branch from it).

Pipelines run (each asserted many ways, to keep the count small):

- `--list` for each event: which jobs `workflow: rules` + job rules select (no job runs);
- the merge-request pipeline: every job green, each step executed once per param set;
- the same MR pipeline again with the first run's caches: no step executes;
- the MR pipeline after a param-only change to specs/model.yaml, not recompiled: the generated
  files stay valid (`compile --check`), prepare is not re-executed, train and evaluate are;
- a deliberately failing gate, which fails the pipeline at the gate (report) job;
- a push to main on a protected branch: verify, then `release:deploy-staging` builds the serving
  image with the local Docker engine and pushes it to the registry on 127.0.0.1:5000;
- the protected tag pipeline's verify job; the schedule's refresh job.

What only a hosted runner has is overridden, nothing else: the deploy jobs' `docker:dind` service
(it cannot be pulled here, and gitlab-ci-local would start it even in shell mode) is replaced by
this machine's engine: the push-to-main run reads an untracked copy of .gitlab-ci.yml (`--file`)
whose only differences are the deploy jobs' `services:` line dropped and `DOCKER_HOST` set to
unix:///var/run/docker.sock; the jobs themselves still check the committed file.
The image's base `python:3.11-slim` cannot be pulled here: the clone's spec names the
suite's one locally built base image (tests/pipelines_fixtures.py), and the image build
installs from docker/wheels/ (the Dockerfile's documented offline mode: no package index is
reachable from inside a build here).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import copy_example, git, mlspec, need
from pipelines_fixtures import REGISTRY, fresh_venv, gitlab_ci_local, job_env

pytestmark = pytest.mark.slow

IMAGE_REPO = "mlspec-test/iris-gitlab"
IMAGE = f"{REGISTRY}/{IMAGE_REPO}"
DOCKER_SOCKET = "unix:///var/run/docker.sock"
# predefined variables the tests set (quiets gitlab-ci-local's warning; pass it only once)
QUIET = ["--ignore-predefined-vars",
         "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_COMMIT_REF_PROTECTED,CI_PROJECT_ID"]
MR = ["--variable", "CI_PIPELINE_SOURCE=merge_request_event",
      "--variable", "CI_MERGE_REQUEST_IID=1",
      "--variable", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main",
      "--unset-variable", "CI_COMMIT_BRANCH"]
TAG = ["--variable", "CI_COMMIT_TAG=v1.0.0", "--unset-variable", "CI_COMMIT_BRANCH",
       "--variable", "CI_COMMIT_REF_PROTECTED=true"]
MAIN = ["--variable", "CI_PIPELINE_SOURCE=push", "--variable", "CI_COMMIT_BRANCH=main",
        "--variable", "CI_COMMIT_REF_PROTECTED=true"]
MR_JOBS = ["experiment:check", "experiment:step-prepare", "experiment:sweep-train: [50]",
           "experiment:sweep-train: [100]", "experiment:sweep-train: [200]",
           "experiment:select-train", "experiment:verify", "experiment:report"]
VARIANTS = 3  # specs/model.yaml sweeps n_estimators over [50, 100, 200]
EXECUTED = re.compile(r"▶ ([A-Za-z0-9_.-]+)")


@dataclass
class Project:
    exe: str
    origin: Path
    work: Path
    wheels: Path
    base: Path
    installed: bool = False

    def run(self, *args: str, timeout: float = 1500,
            name: str = "pipeline") -> subprocess.CompletedProcess[str]:
        """One pipeline: a fresh venv first on PATH, mlspec nowhere else, the wheel folder as
        PIP_FIND_LINKS; wall time printed (shown with -rA).

        HOME is a fresh folder, as a runner's user has: gitlab-ci-local runs each job in
        `bash -c` with a socket as stdin, which bash takes for an ssh session and so sources
        ~/.bashrc; a developer's ~/.bashrc that puts pyenv's shims first made `pip` install
        mlspec into pyenv's interpreter instead of the pipeline's venv."""
        venv = Path(tempfile.mkdtemp(prefix="venv-", dir=self.base))
        home = venv / "home"
        home.mkdir()
        if (Path.home() / ".gitconfig").is_file():  # the committer identity only
            shutil.copy(Path.home() / ".gitconfig", home / ".gitconfig")
        env = job_env(fresh_venv(venv / "env"), HOME=str(home))
        start = time.monotonic()
        res = subprocess.run(
            [self.exe, "--force-shell-executor", "--shell-isolation",
             "--no-artifacts-to-source", "--no-color", "--max-job-name-padding", "0", *QUIET,
             "--variable", f"PIP_FIND_LINKS={self.wheels}", *args],
            cwd=self.work, capture_output=True, text=True, timeout=timeout, env=env)
        sys.stderr.write(f"gitlab-ci-local {name}: {time.monotonic() - start:.0f}s\n")
        # the generated install line put mlspec into this pipeline's fresh venv
        self.installed = (venv / "env" / "bin" / "mlspec").is_file()
        shutil.rmtree(venv, ignore_errors=True)
        return res

    def listed(self, *args: str) -> list[str]:
        res = subprocess.run([self.exe, "--list", "--no-color", *QUIET, *args], cwd=self.work,
                             capture_output=True, text=True, timeout=120, env=job_env(None))
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


def executions(out: str, jobs: list[str]) -> dict[str, Counter[str]]:
    """Per job, how many times each step was executed (mlspec prints `▶ <step>: ...` when it
    runs a step's command, `· <step>: up to date` or `restored from the cache` otherwise)."""
    return {job: Counter(EXECUTED.findall(job_log(out, job))) for job in jobs}


def total(counts: dict[str, Counter[str]], step: str) -> int:
    return sum(c[step] for c in counts.values())


def _counts(counts: dict[str, Counter[str]]) -> str:
    return "; ".join(f"{job} ran {dict(c)}" for job, c in counts.items() if c) or "nothing ran"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, wheel_dir: Path,
            base_image: str) -> Iterator[Project]:
    exe = gitlab_ci_local()
    base = tmp_path_factory.mktemp("gitlab")
    upstream = copy_example("iris", base / "upstream", commit=False)
    spec = upstream / "mlspec.yaml"
    text = spec.read_text()
    assert "\n  install:" not in text  # the generated install line is under test
    # what only this machine lacks: the base image cannot be pulled, the registry is local
    for old, new in (('base: "python:3.11-slim"', f'base: "{base_image}"'),
                     ("name: ghcr.io/acme/iris", f"name: {IMAGE}")):
        assert old in text
        text = text.replace(old, new)
    spec.write_text(text)
    res = mlspec("compile", cwd=upstream)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pip install ''mlspec-gitops[sklearn]==" in (upstream / ".gitlab-ci.yml").read_text()
    git("add", "-A", cwd=upstream)
    git("commit", "-q", "-m", "iris, image in the local registry", cwd=upstream)
    origin = base / "origin.git"
    git("clone", "-q", "--bare", str(upstream), str(origin), cwd=base)
    work = base / "work"
    git("clone", "-q", str(origin), str(work), cwd=base)
    git("config", "user.email", "ci@example.com", cwd=work)
    git("config", "user.name", "mlspec tests", cwd=work)
    git("checkout", "-q", "-b", "feature", cwd=work)
    (work / "NOTES.md").write_text("an experiment\n")
    git("add", "NOTES.md", cwd=work)
    git("commit", "-q", "-m", "notes", cwd=work)
    yield Project(exe, origin, work, wheel_dir, base)


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
        "schedule:monitor", "schedule:monitor-failed", "schedule:monitor-passed"]
    # (monitor-failed runs only when the monitor failed, monitor-passed only when it passed)
    # the retrain a failed monitor starts (mlspec alert): the refresh job alone, never a loop
    assert project.listed("--variable", "CI_PIPELINE_SOURCE=pipeline",
                          "--variable", "MLSPEC_SCHEDULE=refresh") == ["schedule:refresh"]


def _installed_from_the_wheel(project: Project, out: str, job: str) -> None:
    """The job ran the generated install line, and that line put mlspec into the pipeline's
    fresh venv (mlspec is on no other PATH entry; the wheel folder is the only place that
    holds it)."""
    log = job_log(out, job)
    assert re.search(r"pip install '?mlspec-gitops(\[sklearn\])?==", log), log[-3000:]
    assert project.installed


def test_merge_request_pipeline_green_then_cached_then_param_change(project: Project) -> None:
    first = project.run(*MR, name="merge request, first run")
    out = first.stdout + first.stderr
    (project.base / "mr-1.log").write_text(out)
    assert first.returncode == 0, out[-6000:]
    assert verdicts(out) == dict.fromkeys(MR_JOBS, "PASS"), out[-6000:]
    for job in MR_JOBS:
        _installed_from_the_wheel(project, out, job)
    # the counts are collected, not asserted one by one: one pass shows every miss of all runs
    problems: list[str] = []

    def expect(ok: bool, what: str, counts: dict[str, Counter[str]]) -> None:
        if not ok:
            problems.append(f"{what}: {_counts(counts)}")

    ran = executions(out, MR_JOBS)
    expect(total(ran, "prepare") == 1 and ran["experiment:step-prepare"]["prepare"] == 1,
           "first run: prepare executed once, in its own job", ran)
    for n in ("50", "100", "200"):
        expect(ran[f"experiment:sweep-train: [{n}]"]["train"] == 1,
               f"first run: variant {n} trained in its matrix job", ran)
    # each param set trained at most once per pipeline: select and verify reuse the sweep
    expect(total(ran, "train") == VARIANTS, "first run: train executed once per variant", ran)
    report = project.artifact("experiment:report", "report.md").read_text()
    assert "f1_macro" in report
    dotenv = "\n".join(p.read_text() for p in project.artifact(
        "experiment:report", ".gitlab-ci-reports/dotenv").glob("*"))
    assert re.search(r"^MLSPEC_METRIC_F1_MACRO=\d", dotenv, re.M), dotenv
    assert "MLSPEC_GATES=pass" in dotenv
    lock = project.artifact("experiment:select-train", "mlspec.lock").read_text()
    model = project.artifact("experiment:select-train", "model/model.pkl").read_bytes()

    # the same commit again, with the caches of the first run: no step executes anywhere
    second = project.run(*MR, name="merge request, from the caches")
    out2 = second.stdout + second.stderr
    (project.base / "mr-2.log").write_text(out2)
    assert second.returncode == 0, out2[-6000:]
    assert verdicts(out2) == dict.fromkeys(MR_JOBS, "PASS")
    ran2 = executions(out2, MR_JOBS)
    expect(all(not c for c in ran2.values()), "second run (warm caches): no step executed", ran2)
    prepare = job_log(out2, "experiment:step-prepare")
    assert "imported cache" in prepare
    assert re.search(r"prepare: (up to date|restored from the cache)", prepare), prepare
    assert project.artifact("experiment:select-train", "mlspec.lock").read_text() == lock
    assert project.artifact("experiment:select-train", "model/model.pkl").read_bytes() == model

    # a param-only change as a user makes it: edit the param, `mlspec run` (the lock follows),
    # commit, no recompile. The generated files stay valid; in CI, prepare is not re-executed,
    # train (each variant once) and evaluate are
    model_yaml = project.work / "specs" / "model.yaml"
    text = model_yaml.read_text()
    assert "max_depth: 5" in text
    model_yaml.write_text(text.replace("max_depth: 5", "max_depth: 6"))
    for args in (("run",), ("compile", "--check")):
        res = mlspec(*args, cwd=project.work)
        assert res.returncode == 0, res.stdout + res.stderr
    changed = git("status", "--porcelain", "--untracked-files=no", cwd=project.work).split("\n")
    assert sorted(line.split()[-1] for line in changed) == ["mlspec.lock", "specs/model.yaml"], \
        changed
    git("commit", "-q", "-am", "train: deeper trees", cwd=project.work)
    try:
        third = project.run(*MR, name="merge request, after a param change")
        out3 = third.stdout + third.stderr
        (project.base / "mr-3.log").write_text(out3)
        assert third.returncode == 0, out3[-6000:]
        assert verdicts(out3) == dict.fromkeys(MR_JOBS, "PASS"), out3[-6000:]
        ran3 = executions(out3, MR_JOBS)
        expect(total(ran3, "prepare") == 0, "param change: prepare not executed", ran3)
        for n in ("50", "100", "200"):
            expect(ran3[f"experiment:sweep-train: [{n}]"]["train"] == 1,
                   f"param change: variant {n} retrained in its matrix job", ran3)
        expect(total(ran3, "train") == VARIANTS,
               "param change: train executed once per variant", ran3)
        expect(total(ran3, "evaluate") >= 1, "param change: evaluate executed", ran3)
        assert project.artifact("experiment:select-train", "mlspec.lock").read_text() != lock
    finally:
        git("reset", "-q", "--hard", "HEAD~1", cwd=project.work)
    assert not problems, "\n".join(problems)


def test_failing_gate_fails_the_pipeline_at_the_gate_job(project: Project) -> None:
    git("checkout", "-q", "-b", "impossible-gate", "feature", cwd=project.work)
    try:
        model = project.work / "specs" / "model.yaml"
        model.write_text(model.read_text().replace(
            "gates:\n", "gates:\n  - accuracy >= 1.01\n", 1))
        res = mlspec("compile", cwd=project.work)
        assert res.returncode == 0, res.stdout + res.stderr
        git("commit", "-q", "-am", "an impossible gate", cwd=project.work)
        run = project.run(*MR, "--needs", "experiment:report", name="failing gate")
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


def _registry(path: str, accept: str = "") -> tuple[bytes, dict[str, str]]:
    req = urllib.request.Request(f"http://{REGISTRY}/v2/{path}", headers={"Accept": accept}
                                 if accept else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as resp:
        return resp.read(), dict(resp.headers.items())


MANIFESTS = ", ".join(("application/vnd.oci.image.index.v1+json",
                       "application/vnd.oci.image.manifest.v1+json",
                       "application/vnd.docker.distribution.manifest.list.v2+json",
                       "application/vnd.docker.distribution.manifest.v2+json"))


def _without_dind(work: Path) -> str:
    """An untracked copy of .gitlab-ci.yml in which the deploy jobs use this machine's Docker
    engine instead of the dind service; nothing else differs."""
    text = (work / ".gitlab-ci.yml").read_text()
    service = re.compile(r"^  services: \['docker:[^']*-dind'\]\n", re.M)
    host = "'DOCKER_HOST': 'tcp://docker:2375'"
    deploys = len(re.findall(r"^'release:deploy-", text, re.M))
    assert deploys >= 1 and len(service.findall(text)) == deploys == text.count(host), text
    text = service.sub("", text).replace(host, f"'DOCKER_HOST': '{DOCKER_SOCKET}'")
    name = ".gitlab-ci-local-deploy.yml"
    (work / name).write_text(text)
    with (work / ".git" / "info" / "exclude").open("a") as fh:
        fh.write(f"/{name}\n")
    return name


def test_push_to_main_verifies_and_deploys_to_the_registry(project: Project,
                                                           wheelhouse: Path) -> None:
    """Push to a protected main: release:verify, then release:deploy-staging for real: the
    serving image built by the local engine (DOCKER_HOST replaces the dind service) and pushed
    to 127.0.0.1:5000; its tag and digest are then read back from the registry's HTTP API."""
    need(shutil.which("docker") is not None, "docker is not installed")
    try:
        _registry("")
    except OSError as exc:
        need(False, f"no registry on {REGISTRY} (.ci/services.sh starts one): {exc}")
    git("checkout", "-q", "main", cwd=project.work)
    try:
        wheels = project.work / "docker" / "wheels"
        shutil.copytree(wheelhouse, wheels)
        git("add", "-f", "docker/wheels", cwd=project.work)
        git("commit", "-q", "-m", "offline wheels for the image build", cwd=project.work)
        git("push", "-q", "origin", "main", cwd=project.work)
        commit = git("rev-parse", "HEAD", cwd=project.work)
        overlay = _without_dind(project.work)
        res = project.run(*MAIN, "--file", overlay, name="push to main with deploy-staging")
        out = res.stdout + res.stderr
        (project.base / "main.log").write_text(out)
        assert res.returncode == 0, out[-6000:]
        assert verdicts(out) == {"release:verify": "PASS", "release:deploy-staging": "PASS"}, \
            out[-6000:]
        for job in ("release:verify", "release:deploy-staging"):
            _installed_from_the_wheel(project, out, job)
        deploy = job_log(out, "release:deploy-staging")
        m = re.search(r"the image (\S+)@(sha256:[0-9a-f]{64}) is pushed", deploy)
        assert m, deploy[-4000:]
        assert m.group(1) == IMAGE
        digest = m.group(2)
        body, _ = _registry(f"{IMAGE_REPO}/tags/list")
        tags = json.loads(body)["tags"]
        assert commit in tags, tags
        _, headers = _registry(f"{IMAGE_REPO}/manifests/{commit}", MANIFESTS)
        assert headers.get("Docker-Content-Digest") == digest, headers
    finally:
        git("checkout", "-q", "-f", "feature", cwd=project.work)


def test_tag_pipeline_runs_its_verify_job(project: Project) -> None:
    git("checkout", "-q", "main", cwd=project.work)
    try:
        git("tag", "-a", "v1.0.0", "-m", "release 1.0.0", cwd=project.work)
        res = project.run(*TAG, "release:verify", name="protected tag, verify")
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-6000:]
        assert verdicts(out) == {"release:verify": "PASS"}
        _installed_from_the_wheel(project, out, "release:verify")
        log = job_log(out, "release:verify")
        assert "mlspec run --verify" in log
        for rel in ("model/model.pkl", "metrics.json", "mlspec.lock"):
            assert project.artifact("release:verify", rel).is_file()
    finally:
        git("checkout", "-q", "-f", "feature", cwd=project.work)


def test_schedule_pipeline_refreshes_and_retrains(project: Project) -> None:
    git("checkout", "-q", "main", cwd=project.work)
    try:
        res = project.run("--variable", "CI_PIPELINE_SOURCE=schedule", name="schedule")
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-6000:]
        assert verdicts(out) == {"schedule:refresh": "PASS"}
        _installed_from_the_wheel(project, out, "schedule:refresh")
        log = job_log(out, "schedule:refresh")
        assert "▶ prepare" in log and "gates" in log
        assert project.artifact("schedule:refresh", "report.md").is_file()
    finally:
        git("checkout", "-q", "-f", "feature", cwd=project.work)
