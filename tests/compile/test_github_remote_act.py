"""The generated GitHub workflows with a remote store (issue 13), executed with `act` (host mode,
the stand-ins, mock `gh` and wheel of tests/compile/test_github_act.py) against a real registry
(Debian's docker-registry, htpasswd, on a free 127.0.0.1 port). The spec, its files and the
training marker are tests/compile/test_gitlab_remote.py's, with the github target; the
credentials reach the jobs as the secrets `ci.secrets` names (`act -s`):

1. a push to main: the release flow's verify job trains once and pushes every step's run;
2. a fresh clone on another branch, same inputs, a same-repository pull request (the whole
   experiment workflow): the step jobs restore from the remote (a fresh act store: no CI cache
   hit) and train nothing; every job is green, the sticky comment included;
3. a pull request from a fork (`pull_request.head.repo.full_name` is not the repository) with a
   changed training script, `-j step-train` (act runs the job and its needs): train executes,
   the push steps are skipped, the registry gains no tag.

act (0.2.89 at the time of writing) refuses the job-level `environment: {name: mlspec-remote,
deployment: false}` the workflows use: its workflow schema knows only `name` and `url`
("Unknown Property deployment", nektos/act#6086), and there is no switch to skip the schema.
So when act rejects the generated file for exactly that reason, act is given a copy (outside
the repository, which keeps the generated files `mlspec compile --check` verifies) where that
mapping is the equivalent string form `environment: mlspec-remote`; nothing else differs. act
has no per-environment secrets either: its `-s` secrets reach every job.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import git, mlspec, tool
from test_github_act import _installed_by_the_generated_line, _succeeded, act
from test_gitlab_remote import FILES, MARKER, SPEC, trained
from test_gitlab_remote import REPO as STORE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "remote"))
from remote_registry import PASSWORD, USER, Registry, running_registry

pytestmark = pytest.mark.slow

GH_REPO = {"full_name": "acme/store", "name": "store", "owner": {"login": "acme"}}
FORK_REPO = {"full_name": "contributor/store", "name": "store",
             "owner": {"login": "contributor"}}
# --insecure-secrets: act masks each secret's value in its log, and the registry's user name
# (`mlspec`) is in nearly every line the assertions read (`mlspec push`, `mlspec-gitops-`)
SECRETS = ["-s", f"STORE_USER={USER}", "-s", f"STORE_TOKEN={PASSWORD}", "--insecure-secrets"]
WORKFLOWS = ("mlspec-experiment.yml", "mlspec-release.yml")
NO_DEPLOYMENT = "    environment:\n      name: mlspec-remote\n      deployment: false\n"
PLAIN = "    environment: mlspec-remote\n"
VERIFY = "verify the lock and gates at this commit"
CHECK = "validate the spec and check generated files"
PR_JOBS = {CHECK, "data: prepare", "model: train", "check the outs against the committed lock",
           "metrics, gates and report", "sticky PR comment"}


def _workflow_files(upstream: Path, out: Path) -> dict[str, Path]:
    """The workflow file act is given for each generated workflow: the generated file itself
    when act accepts it, else (act's schema refuses `deployment:`) a copy with the string form
    of the environment."""
    out.mkdir()
    files = {}
    for name in WORKFLOWS:
        generated = upstream / ".github" / "workflows" / name
        res = subprocess.run([tool("act"), "--validate", "-W", str(generated)], cwd=upstream,
                             capture_output=True, text=True, timeout=120)
        if res.returncode == 0:
            files[name] = generated
            continue
        errors = res.stdout + res.stderr
        assert "Unknown Property deployment" in errors, errors
        text = generated.read_text()
        assert text.count("environment:") == text.count(NO_DEPLOYMENT) > 0, text
        (out / name).write_text(text.replace(NO_DEPLOYMENT, PLAIN))
        files[name] = out / name
        sys.stderr.write(f"act refuses `deployment: false` in {name}: running a copy with "
                         f"`environment: mlspec-remote`\n")
    return files


@dataclass
class Setup:
    origin: Path
    base: Path
    wheels: Path
    registry: Registry
    workflows: dict[str, Path]

    def clone(self, name: str, branch: str) -> Path:
        """A fresh clone of origin whose remote names acme/store on GitHub (act's
        github.repository), on `branch`."""
        work = self.base / name
        git("clone", "-q", str(self.origin), str(work), cwd=self.base)
        git("config", "user.email", "ci@example.com", cwd=work)
        git("config", "user.name", "mlspec tests", cwd=work)
        git("remote", "set-url", "origin", "https://github.com/acme/store.git", cwd=work)
        if branch != "main":
            git("checkout", "-q", "-b", branch, cwd=work)
        return work

    def run(self, work: Path, event: str, payload: dict, workflow: str, *extra: str,
            name: str) -> str:
        """One act run in `work` with a fresh store (no CI cache, no artifacts); its log,
        saved beside."""
        res = act(work, event, payload, self.workflows[workflow], self.base / f"store-{name}",
                  self.wheels, *SECRETS, *extra, name=name)
        log = res.stdout + res.stderr
        (self.base / f"{name}.log").write_text(log)
        assert res.returncode == 0, log[-6000:]
        assert "Job failed" not in log, log[-6000:]
        return log

    def tags(self) -> list[str]:
        return self.registry.tags(STORE)


def job_log(log: str, job: str) -> str:
    """The lines act printed for the job named `job` (`[workflow/job] ...`), with the bare lines
    that follow them: a `mlspec run` that executes a step after another draws rich's status
    line on act's pseudo-terminal, and act prints the redrawn lines without the prefix."""
    kept, current = [], None
    for line in log.splitlines():
        m = re.match(r"^\[[^/\]]*/([^\]]*)\](.*)$", line)
        if m:
            current, line = m.group(1).strip(), m.group(2)
        if current == job:
            kept.append(line)
    return "\n".join(kept)


def _pr(work: Path, branch: str, head_repo: dict[str, object]) -> dict[str, object]:
    sha = git("rev-parse", "HEAD", cwd=work)
    return {"action": "synchronize", "number": 3, "repository": GH_REPO,
            "pull_request": {"number": 3, "head": {"ref": branch, "sha": sha, "repo": head_repo},
                             "base": {"ref": "main", "repo": GH_REPO}}}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, wheel_dir: Path) -> Iterator[Setup]:
    tool("act")
    base = tmp_path_factory.mktemp("github-remote")
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        upstream = base / "upstream"
        upstream.mkdir()
        git("init", "-q", "-b", "main", cwd=upstream)
        git("config", "user.email", "ci@example.com", cwd=upstream)
        git("config", "user.name", "mlspec tests", cwd=upstream)
        spec = SPEC.format(host=reg.host, repo=STORE)
        assert "  targets: [gitlab]\n" in spec
        (upstream / "mlspec.yaml").write_text(spec.replace("[gitlab]", "[github]"))
        for rel, text in FILES.items():
            (upstream / rel).parent.mkdir(parents=True, exist_ok=True)
            (upstream / rel).write_text(textwrap.dedent(text).lstrip())
        env = {"MLSPEC_REMOTE": ""}  # the developer's run: nothing reaches the registry
        for args in (("run",), ("compile",)):
            res = mlspec(*args, cwd=upstream, env=env)
            assert res.returncode == 0, res.stdout + res.stderr
        assert sorted(p.name for p in (upstream / ".github" / "workflows").iterdir()) == \
            sorted(WORKFLOWS)
        git("add", "-A", cwd=upstream)
        git("commit", "-q", "-m", "a project with a remote store", cwd=upstream)
        origin = base / "origin.git"
        git("clone", "-q", "--bare", str(upstream), str(origin), cwd=base)
        workflows = _workflow_files(upstream, base / "act-workflows")
        yield Setup(origin, base, wheel_dir, reg, workflows)


def test_second_run_pulls_instead_of_training_and_a_fork_never_pushes(setup: Setup) -> None:
    assert setup.tags() == []
    # 1. a push to main: the release flow's verify job reproduces every step, then pushes them
    main = setup.clone("main", "main")
    push = {"ref": "refs/heads/main", "before": "0" * 40,
            "after": git("rev-parse", "HEAD", cwd=main), "repository": GH_REPO}
    out1 = setup.run(main, "push", push, "mlspec-release.yml", "-j", "verify", name="main")
    _installed_by_the_generated_line(out1)
    assert _succeeded(out1) == {VERIFY}, out1[-6000:]
    verify = job_log(out1, VERIFY)
    assert trained(out1) == 1 and MARKER in verify, verify[-3000:]
    assert "2 pushed, 0 already there, 0 stale" in verify, verify[-3000:]
    tags = setup.tags()
    assert len(tags) == 2 and all(t.startswith("sha256-") for t in tags), tags

    # 2. a fresh clone on another branch, same inputs, a same-repository pull request: pulls
    feature = setup.clone("feature", "feature")
    out2 = setup.run(feature, "pull_request", _pr(feature, "feature", GH_REPO),
                     "mlspec-experiment.yml", name="pull-request")
    assert trained(out2) == 0 and MARKER not in out2, out2[-6000:]
    assert _succeeded(out2) == PR_JOBS, out2[-6000:]  # the comment job: same repository
    assert "| hit mlspec-" not in out2, "a CI cache entry, not the remote, restored a step"
    for job, step in (("data: prepare", "prepare"), ("model: train", "train")):
        log = job_log(out2, job)
        assert f"↺ {step}: restored from the cache" in log, log[-3000:]
        assert f"⭐ Run Main mlspec push {step}" in log, log[-3000:]
        assert re.search(r"0 pushed, \d already there, 0 stale", log), log[-3000:]
    assert setup.tags() == tags

    # 3. a fork's pull request with a changed training script: trains, pushes nothing
    fork = setup.clone("fork", "fork-change")
    script = fork / "src" / "train.py"
    script.write_text(script.read_text() + "# a contributor's change\n")
    git("commit", "-q", "-am", "tweak the trainer", cwd=fork)
    out3 = setup.run(fork, "pull_request", _pr(fork, "fork-change", FORK_REPO),
                     "mlspec-experiment.yml", "-j", "step-train", name="fork")
    assert _succeeded(out3) == {CHECK, "data: prepare", "model: train"}, out3[-6000:]
    log = job_log(out3, "model: train")
    assert trained(out3) == 1 and MARKER in log, log[-3000:]
    assert "↺ prepare: restored from the cache" in job_log(out3, "data: prepare")
    assert "⭐ Run Main mlspec push" not in out3, out3[-6000:]
    assert "pushed" not in out3, out3[-6000:]
    assert setup.tags() == tags
