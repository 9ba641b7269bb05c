"""The generated .gitlab-ci.yml with a remote store (issue 13), run by gitlab-ci-local against a
real registry (Debian's docker-registry, htpasswd, on a free 127.0.0.1 port; its credentials
reach the jobs as the CI/CD variables ci.secrets names):

1. a push to main: release:verify trains (the training script prints a marker) and pushes
   every step's run;
2. a fresh clone on another branch, same inputs, merge-request pipeline: the step jobs pull
   instead of training (no marker, no `▶ train`), and every job is green;
3. a merge request from a fork (CI_MERGE_REQUEST_SOURCE_PROJECT_ID differs), with a changed
   training script: train executes, the push is skipped, the registry gains no tag;
4. `mlspec release 1.0.0` on a developer's clone pins the runs main pushed; the protected tag
   pipeline's verify job restores exactly those (`mlspec pull --release`) and, with
   `ci.verify.release: none`, executes no step.

A tiny spec (plain Python steps, no scikit-learn) keeps the install to mlspec's core: the
generated `pip install mlspec-gitops==<version>` with the suite's one wheel as PIP_FIND_LINKS.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import git, mlspec
from pipelines_fixtures import fresh_venv, gitlab_ci_local, job_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "remote"))
from remote_registry import PASSWORD, USER, Registry, running_registry

pytestmark = pytest.mark.slow

REPO = "mlspec-test/store"
MARKER = "TRAINING-EXECUTED"
QUIET = ["--ignore-predefined-vars",
         "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_COMMIT_REF_PROTECTED,CI_PROJECT_ID"]
CREDS = ["--variable", f"STORE_USER={USER}", "--variable", f"STORE_TOKEN={PASSWORD}"]
MAIN = ["--variable", "CI_PIPELINE_SOURCE=push", "--variable", "CI_COMMIT_BRANCH=main",
        "--variable", "CI_COMMIT_REF_PROTECTED=true"]
MR = ["--variable", "CI_PIPELINE_SOURCE=merge_request_event",
      "--variable", "CI_MERGE_REQUEST_IID=1",
      "--variable", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main",
      "--unset-variable", "CI_COMMIT_BRANCH", "--variable", "CI_PROJECT_ID=42",
      "--variable", "CI_MERGE_REQUEST_PROJECT_ID=42"]
SAME_PROJECT = ["--variable", "CI_MERGE_REQUEST_SOURCE_PROJECT_ID=42"]
FORK = ["--variable", "CI_MERGE_REQUEST_SOURCE_PROJECT_ID=7"]
TAG = ["--variable", "CI_PIPELINE_SOURCE=push", "--variable", "CI_COMMIT_TAG=v1.0.0",
       "--variable", "CI_COMMIT_REF_NAME=v1.0.0", "--unset-variable", "CI_COMMIT_BRANCH",
       "--variable", "CI_COMMIT_REF_PROTECTED=true"]
MR_JOBS = ["experiment:check", "experiment:step-prepare", "experiment:step-train",
           "experiment:verify", "experiment:report"]
EXECUTED = re.compile(r"▶ ([A-Za-z0-9_.-]+)")

SPEC = """\
version: 1
project:
  name: store-ci
  remote: oci://{host}/{repo}
data:
  steps:
    prepare:
      command: python src/prepare.py
      deps: [src/prepare.py]
      outs: [data/rows.csv]
model:
  steps:
    train:
      command: python src/train.py
      deps: [src/train.py, data/rows.csv]
      outs: [model/model.txt]
      metrics: metrics.json
ci:
  targets: [gitlab]
  secrets: {{remote_username: STORE_USER, remote_password: STORE_TOKEN}}
  verify: {{release: none}}
"""
FILES = {
    "src/prepare.py": """
        import pathlib
        pathlib.Path("data").mkdir(exist_ok=True)
        pathlib.Path("data/rows.csv").write_text("x\\n" + "\\n".join(map(str, range(50))))
    """,
    "src/train.py": f"""
        import json, pathlib
        print("{MARKER}", flush=True)
        rows = pathlib.Path("data/rows.csv").read_text().split()[1:]
        pathlib.Path("model").mkdir(exist_ok=True)
        pathlib.Path("model/model.txt").write_text(str(sum(map(int, rows))))
        pathlib.Path("metrics.json").write_text(json.dumps({{"rows": len(rows)}}))
    """,
}


@dataclass
class Setup:
    exe: str
    origin: Path
    base: Path
    wheels: Path
    registry: Registry

    def clone(self, name: str, branch: str) -> Path:
        work = self.base / name
        git("clone", "-q", str(self.origin), str(work), cwd=self.base)
        git("config", "user.email", "ci@example.com", cwd=work)
        git("config", "user.name", "mlspec tests", cwd=work)
        if branch != "main":
            git("checkout", "-q", "-b", branch, cwd=work)
        return work

    def run(self, work: Path, *args: str, name: str) -> str:
        """One pipeline in `work` (fresh venv and HOME, mlspec only from the wheel folder);
        its output, saved beside; wall time on stderr."""
        venv = Path(tempfile.mkdtemp(prefix="venv-", dir=self.base))
        (venv / "home").mkdir()
        env = job_env(fresh_venv(venv / "env"), HOME=str(venv / "home"))
        start = time.monotonic()
        res = subprocess.run(
            [self.exe, "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source",
             "--no-color", "--max-job-name-padding", "0", *QUIET,
             "--variable", f"PIP_FIND_LINKS={self.wheels}", *CREDS, *args],
            cwd=work, capture_output=True, text=True, timeout=900, env=env)
        sys.stderr.write(f"gitlab-ci-local {name}: {time.monotonic() - start:.0f}s\n")
        shutil.rmtree(venv, ignore_errors=True)
        out = res.stdout + res.stderr
        (self.base / f"{name}.log").write_text(out)
        assert res.returncode == 0, out[-6000:]
        return out

    def tags(self) -> list[str]:
        return self.registry.tags(REPO)


def job_log(out: str, job: str) -> str:
    return "\n".join(line[len(job):] for line in out.splitlines() if line.startswith(job + " "))


def verdicts(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        m = re.match(r"^\s*(PASS|FAIL)\s+(.+?)\s*$", line)
        if m:
            found[m.group(2)] = m.group(1)
    return found


def trained(out: str) -> int:
    """Training executions in a pipeline's logs: the lines where mlspec starts `train`."""
    return sum(1 for m in EXECUTED.finditer(out) if m.group(1) == "train")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, wheel_dir: Path) -> Iterator[Setup]:
    exe = gitlab_ci_local()
    base = tmp_path_factory.mktemp("gitlab-remote")
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        upstream = base / "upstream"
        upstream.mkdir()
        git("init", "-q", "-b", "main", cwd=upstream)
        git("config", "user.email", "ci@example.com", cwd=upstream)
        git("config", "user.name", "mlspec tests", cwd=upstream)
        (upstream / "mlspec.yaml").write_text(SPEC.format(host=reg.host, repo=REPO))
        for rel, text in FILES.items():
            (upstream / rel).parent.mkdir(parents=True, exist_ok=True)
            (upstream / rel).write_text(textwrap.dedent(text).lstrip())
        env = {"MLSPEC_REMOTE": ""}  # the developer's run: nothing reaches the registry
        for args in (("run",), ("compile",)):
            res = mlspec(*args, cwd=upstream, env=env)
            assert res.returncode == 0, res.stdout + res.stderr
        git("add", "-A", cwd=upstream)
        git("commit", "-q", "-m", "a project with a remote store", cwd=upstream)
        origin = base / "origin.git"
        git("clone", "-q", "--bare", str(upstream), str(origin), cwd=base)
        yield Setup(exe, origin, base, wheel_dir, reg)


def test_second_pipeline_pulls_instead_of_training_and_a_fork_never_pushes(setup: Setup
                                                                           ) -> None:
    assert setup.tags() == []
    # 1. main: the release flow's verify job reproduces every step, then pushes them
    main = setup.clone("main", "main")
    out1 = setup.run(main, *MAIN, name="main")
    verify = job_log(out1, "release:verify")
    assert trained(out1) == 1 and MARKER in verify, verify[-3000:]
    assert re.search(r"2 pushed, 0 already there, 0 stale", verify), verify[-3000:]
    tags = setup.tags()
    assert len(tags) == 2 and all(t.startswith("sha256-") for t in tags), tags

    # 2. a fresh clone on another branch, same inputs, a same-project merge request: pulls
    feature = setup.clone("feature", "feature")
    out2 = setup.run(feature, *MR, *SAME_PROJECT, name="merge-request")
    assert trained(out2) == 0 and MARKER not in out2, out2[-6000:]
    for job, step in (("experiment:step-prepare", "prepare"), ("experiment:step-train", "train")):
        log = job_log(out2, job)
        assert f"↺ {step}: restored from the cache" in log, log[-3000:]
        assert re.search(r"0 pushed, \d already there, 0 stale", log), log[-3000:]
    assert verdicts(out2) == dict.fromkeys(MR_JOBS, "PASS"), out2[-6000:]
    assert setup.tags() == tags

    # 3. a fork's merge request with a changed training script: trains, pushes nothing
    fork = setup.clone("fork", "fork-change")
    script = fork / "src" / "train.py"
    script.write_text(script.read_text() + "# a contributor's change\n")
    git("commit", "-q", "-am", "tweak the trainer", cwd=fork)
    out3 = setup.run(fork, *MR, *FORK, "--needs", "experiment:step-train", name="fork")
    log = job_log(out3, "experiment:step-train")
    assert trained(out3) == 1 and MARKER in log, log[-3000:]
    assert "a merge request from a fork: skipped" in log, log[-3000:]
    assert "pushed" not in log.replace("never write it", ""), log[-3000:]
    assert setup.tags() == tags

    # 4. a release pins main's runs; its tag pipeline restores them and trains nothing
    creds = {"MLSPEC_REGISTRY_USER": USER, "MLSPEC_REGISTRY_PASSWORD": PASSWORD}
    dev = setup.clone("release", "main")  # a developer's clone: pull, then release
    for args in (("pull",), ("release", "1.0.0")):
        res = mlspec(*args, cwd=dev, env=creds)
        assert res.returncode == 0, res.stdout + res.stderr
    message = git("tag", "-l", "--format=%(contents)", "v1.0.0", cwd=dev)
    assert message.count("sha256:") >= 4, message  # two steps: a key and a digest each
    git("push", "-q", "origin", "v1.0.0", cwd=dev)
    git("checkout", "-q", "v1.0.0", cwd=dev)
    shutil.rmtree(dev / "data")  # the tag pipeline starts from the commit alone
    shutil.rmtree(dev / "model")
    out4 = setup.run(dev, *TAG, "release:verify", name="tag")
    verify = job_log(out4, "release:verify")
    assert trained(out4) == 0 and MARKER not in out4, verify[-3000:]
    for step in ("prepare", "train"):
        assert f"restored {step} from oci://{setup.registry.host}/{REPO} (pinned by v1.0.0)" \
            in verify, verify[-3000:]
    assert verdicts(out4) == {"release:verify": "PASS"}, out4[-6000:]
    # the release pushed no run, only tagged the pinned manifests pin-<release>-<step>
    assert setup.tags() == sorted([*tags, "pin-v1.0.0-prepare", "pin-v1.0.0-train"])
