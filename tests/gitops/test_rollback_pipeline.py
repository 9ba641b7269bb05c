"""The generated rollback job run for real by gitlab-ci-local (shell executor, isolated builds):
a pipeline `mlspec rollback` asks for (source api, MLSPEC_ROLLBACK_TO + MLSPEC_ROLLBACK_DIGEST
set, as its dispatch sets them) in the real two-release history of tests/gitops/rollback_helpers.

The spec's deploy command echoes `deployed $IMAGE_DIGEST`; the job must print the FIRST
release's digest. The job installs mlspec with the generated install line from the suite's one
wheel (PIP_FIND_LINKS, a fresh venv, mlspec nowhere else on PATH: tests/pipelines_fixtures.py),
as tests/compile/test_gitlab_local.py runs its pipelines. Nothing is built: no docker.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import git, mlspec
from pipelines_fixtures import fresh_venv, gitlab_ci_local, job_env
from rollback_helpers import FIRST, SECOND, rollback, two_releases

pytestmark = pytest.mark.slow

QUIET = ["--ignore-predefined-vars",
         "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_COMMIT_REF_PROTECTED,CI_PROJECT_ID"]
ROLLBACK_JOB = "release:rollback-production"


def _api_pipeline(version: str, digest: str) -> list[str]:
    """The variables of the pipeline `mlspec rollback --ci gitlab` creates on main."""
    return ["--variable", "CI_PIPELINE_SOURCE=api", "--variable", "CI_COMMIT_BRANCH=main",
            "--variable", "CI_COMMIT_REF_PROTECTED=true",
            "--variable", f"MLSPEC_ROLLBACK_TO={version}",
            "--variable", f"MLSPEC_ROLLBACK_DIGEST={digest}"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    exe = gitlab_ci_local()
    base = tmp_path_factory.mktemp("rollback-gitlab")
    upstream = two_releases(base / "upstream")
    (upstream / "requirements.txt").write_text("# the toy steps need nothing\n")
    res = mlspec("compile", "--target", "gitlab", cwd=upstream)
    assert res.returncode == 0, res.stdout + res.stderr
    git("add", "-A", cwd=upstream)
    git("commit", "-q", "-m", "the GitLab pipeline", cwd=upstream)
    origin = base / "origin.git"
    git("clone", "-q", "--bare", str(upstream), str(origin), cwd=base)
    git("push", "-q", str(origin), "refs/notes/mlspec:refs/notes/mlspec", cwd=upstream)
    clone = base / "work"
    git("clone", "-q", str(origin), str(clone), cwd=base)
    git("fetch", "-q", "origin", "refs/notes/mlspec:refs/notes/mlspec", cwd=clone)
    return exe, clone


def _listed(exe: str, clone: Path, *args: str) -> list[str]:
    res = subprocess.run([exe, "--list", "--no-color", *QUIET, *args], cwd=clone,
                         capture_output=True, text=True, timeout=120, env=job_env(None))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("name "))
    return [re.split(r"\s{2,}", line.strip())[0] for line in lines[head + 1:] if line.strip()]


def _run(exe: str, clone: Path, wheels: Path, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="venv-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        if (Path.home() / ".gitconfig").is_file():
            shutil.copy(Path.home() / ".gitconfig", home / ".gitconfig")
        env = job_env(fresh_venv(Path(tmp) / "env"), HOME=str(home))
        res = subprocess.run(
            [exe, "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source",
             "--no-color", "--max-job-name-padding", "0", *QUIET,
             "--variable", f"PIP_FIND_LINKS={wheels}", *args],
            cwd=clone, capture_output=True, text=True, timeout=1200, env=env)
    return res.stdout + res.stderr


def _verdict(out: str) -> str:
    found = re.findall(rf"^\s*(PASS|FAIL)\s+{re.escape(ROLLBACK_JOB)}\s*$", out, re.M)
    return found[-1] if found else "none"


def _log(out: str, job: str) -> str:
    return "\n".join(line[len(job):] for line in out.splitlines() if line.startswith(job + " "))


def test_a_rollback_pipeline_runs_only_the_rollback_job(work: tuple[str, Path]) -> None:
    exe, clone = work
    assert _listed(exe, clone, *_api_pipeline("0.1.0", FIRST)) == [ROLLBACK_JOB]
    # the same pipeline without the variable is no rollback; a push to main never is one
    push = ["--variable", "CI_PIPELINE_SOURCE=push", "--variable", "CI_COMMIT_BRANCH=main",
            "--variable", "CI_COMMIT_REF_PROTECTED=true"]
    assert _listed(exe, clone, *push) == ["release:verify"]
    assert _listed(exe, clone, *push, "--variable", "MLSPEC_ROLLBACK_TO=0.1.0") == [
        "release:verify"]


def test_the_deploy_command_receives_the_first_releases_digest(
        work: tuple[str, Path], wheel_dir: Path) -> None:
    exe, clone = work
    # what `mlspec rollback` (no VERSION, no token) resolves and would send
    code, out, err = rollback(clone, "--dry-run", "--ci", "gitlab", "--json")
    assert code == 0, err
    sent = json.loads(out)
    assert (sent["version"], sent["digest"]) == ("0.1.0", FIRST)
    assert '"key": "MLSPEC_ROLLBACK_TO", "value": "0.1.0"' in sent["command"]
    out = _run(exe, clone, wheel_dir, ROLLBACK_JOB, *_api_pipeline("0.1.0", FIRST))
    log = _log(out, ROLLBACK_JOB)
    assert f"\n > deployed {FIRST}\n" in log + "\n", out[-5000:]  # the deploy's own output
    assert _verdict(out) == "PASS", out[-3000:]
    assert SECOND not in log
    # a hostile or contradicting digest stops the job before the deploy command
    for digest in (SECOND, 'sha256:"; echo deployed pwned; "'):
        out = _run(exe, clone, wheel_dir, ROLLBACK_JOB, *_api_pipeline("v0.1.0", digest))
        log = _log(out, ROLLBACK_JOB)
        assert "[rollback.digest]" in log, out[-5000:]
        assert not re.search(r"^ > deployed", log, re.M), log  # the deploy never printed
        assert _verdict(out) == "FAIL", out[-3000:]
