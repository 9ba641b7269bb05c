"""The generated workflows, executed for real with `act` (host mode) in a clone of examples/iris.

Remote actions cannot be fetched offline: each pinned action is mapped with
`--local-repository` to a stand-in under tests/compile/act/ (artifacts and caches are copied
through a store directory). actions/checkout is act's own built-in. `gh` is a mock of the
GitHub API (no GitHub server exists here). Everything else is real, as on a user's first push:
mlspec is absent from PATH (the test venv and every directory holding an `mlspec` executable
are removed), the setup-python stand-in gives each job a fresh virtualenv with nothing
installed, `ci.install` is unset, and `PIP_FIND_LINKS` names a folder holding only the wheel
built from this checkout: the generated `pip install mlspec-gitops==<version>` is what installs
mlspec (dependencies from the package index), so a wrong name or version fails the jobs. The
steps train and evaluate, gates and the report run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_example, git, mlspec, tool
from pipelines_fixtures import job_env

HERE = Path(__file__).resolve().parent
ACT = HERE / "act"
PINS = json.loads((REPO / "mlspec" / "compile" / "pins.json").read_text())
STANDINS = {"actions/setup-python": "setup-python", "actions/cache": "cache",
            "actions/upload-artifact": "upload-artifact",
            "actions/download-artifact": "download-artifact"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pr_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """origin: iris on main with its lock; work: a clone on branch `pr` that edits evaluate."""
    base = tmp_path_factory.mktemp("act")
    origin = copy_example("iris", base / "origin", commit=False)
    assert "\n  install:" not in (origin / "mlspec.yaml").read_text()
    for args in (("compile",), ("run",)):
        res = mlspec(*args, cwd=origin)
        assert res.returncode == 0, res.stdout + res.stderr
    git("add", "-A", cwd=origin)
    git("commit", "-q", "-m", "iris with its lock", cwd=origin)
    work = base / "work"
    git("clone", "-q", str(origin), str(work), cwd=base)
    for k, v in (("user.email", "ci@example.com"), ("user.name", "mlspec tests")):
        git("config", k, v, cwd=work)
    git("checkout", "-q", "-b", "pr", cwd=work)
    evaluate = work / "src" / "evaluate.py"  # the PR touches evaluation, not training
    evaluate.write_text(evaluate.read_text() + "# report macro F1 first\n")
    for args in (("compile",), ("run",)):
        res = mlspec(*args, cwd=work)
        assert res.returncode == 0, res.stdout + res.stderr
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "evaluate: a comment", cwd=work)
    git("remote", "set-url", "origin", "https://github.com/acme/iris.git", cwd=work)
    return work


def act(repo: Path, event: str, payload: dict, workflow: str | Path, store: Path, wheels: Path,
        *extra: str, name: str = "") -> subprocess.CompletedProcess[str]:
    """act runs `workflow` of repo's .github/workflows/, or the workflow file a Path names."""
    exe = tool("act")
    (store / "artifacts").mkdir(parents=True, exist_ok=True)
    event_file = store / "event.json"
    event_file.write_text(json.dumps(payload))
    path = workflow if isinstance(workflow, Path) else f".github/workflows/{workflow}"
    cmd = [exe, event, "-W", str(path), "-e", str(event_file),
           "-P", "ubuntu-latest=-self-hosted", "--pull=false", "--no-cache-server",
           "--action-offline-mode",
           "--env", f"MLSPEC_ACT_STORE={store}", "--env", f"MLSPEC_ACT_TOOLS={ACT}",
           "--env", f"PIP_FIND_LINKS={wheels}",
           "--env", f"MLSPEC_ACT_PYTHON={getattr(sys, '_base_executable', sys.executable)}",
           *extra]
    for action, folder in STANDINS.items():
        cmd += ["--local-repository", f"{action}@{PINS[action]['sha']}={ACT / folder}"]
    env = job_env(None)  # mlspec nowhere on PATH
    env["PATH"] = f"{ACT / 'bin'}{os.pathsep}{env['PATH']}"
    assert shutil.which("mlspec", path=env["PATH"]) is None
    start = time.monotonic()
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env, timeout=1500)
    sys.stderr.write(f"act {event} {Path(workflow).name} {name}: {time.monotonic() - start:.0f}s\n")
    return res


def _installed_by_the_generated_line(log: str) -> None:
    """The jobs' install line installed mlspec (the wheel folder is the only place holding
    it; the workflows' own `pip install mlspec-gitops==<version>`, ci.install being unset)."""
    assert re.search(r"Successfully installed [^\n]*mlspec-gitops-", log), log[-4000:]


def _pr_event(work: Path) -> dict:
    sha = git("rev-parse", "HEAD", cwd=work)
    repo = {"full_name": "acme/iris", "name": "iris", "owner": {"login": "acme"}}
    return {"action": "synchronize", "number": 7, "repository": repo,
            "pull_request": {"number": 7, "head": {"ref": "pr", "sha": sha, "repo": repo},
                             "base": {"ref": "main", "repo": repo}}}


def _succeeded(out: str) -> set[str]:
    return {line.split("]")[0].lstrip("[").split("/", 1)[1].strip()
            for line in out.splitlines() if "🏁  Job succeeded" in line}


def test_experiment_workflow_runs_every_job(pr_clone: Path, tmp_path: Path,
                                            wheel_dir: Path) -> None:
    store = tmp_path / "store"
    res = act(pr_clone, "pull_request", _pr_event(pr_clone), "mlspec-experiment.yml", store,
              wheel_dir, name="first push")
    log = res.stdout + res.stderr
    (tmp_path / "act.log").write_text(log)
    assert res.returncode == 0, log[-6000:]
    assert "Job failed" not in log
    _installed_by_the_generated_line(log)
    done = _succeeded(log)
    for job in ("validate the spec and check generated files", "data: prepare",
                "pick the best variant of train", "metrics, gates and report",
                "sticky PR comment", "check the outs against the committed lock"):
        assert job in done, (job, sorted(done))
    assert sum(1 for j in done if j.startswith("sweep: train, evaluate")) == 3
    arts = store / "artifacts"
    assert (arts / "mlspec-step-prepare" / "data" / "iris.csv").is_file()
    variants = sorted(p.name for p in arts.glob("mlspec-sweep-train.*"))
    assert variants == ["mlspec-sweep-train.100", "mlspec-sweep-train.200",
                        "mlspec-sweep-train.50"]
    scores = {}
    for v in variants:  # each matrix job left its variant record (mlspec.run.sweep)
        # the artifact root is the least common ancestor of its paths (.mlspec/ once the
        # sweep artifact also carries .mlspec/cache/)
        (record,) = [p for p in (arts / v).rglob("*.json")
                     if p.parent.name == "train" and p.parent.parent.name in ("sweeps", v)]
        data = json.loads(record.read_text())
        scores[data["params"]["n_estimators"]] = data["metrics"]["f1_macro"]
    assert set(scores) == {50, 100, 200}
    lock = yaml.safe_load((arts / "mlspec-step-evaluate" / "mlspec.lock").read_text())
    best = max(scores.values())
    assert lock["sweeps"]["train"]["metric"] == "f1_macro"
    assert scores[lock["sweeps"]["train"]["best"]["n_estimators"]] == best
    picked = re.findall(r"pick the best variant of train\s*\]\s+\| (n_estimators=\d+)\s+\S+\s+"
                        r"cached", log)
    assert sorted(picked) == ["n_estimators=100", "n_estimators=200", "n_estimators=50"], \
        "the pick job reran a variant instead of using the matrix jobs' records"
    assert "ran 0, skipped 3 (up to date)" in log, "the report job reran steps"
    assert (arts / "mlspec-step-train" / "model" / "model.pkl").stat().st_size > 1000
    report = (arts / "mlspec-report" / "report.md").read_text()
    assert "f1_macro" in report
    comments = json.loads((store / "github" / "comments.json").read_text())
    assert len(comments) == 1 and comments[0]["issue"] == 7
    assert comments[0]["body"].startswith("<!-- mlspec-report -->\n")
    assert comments[0]["body"].count("<!-- mlspec-report -->") == 1
    assert list((store / "cache").glob("mlspec-prepare-*")), "prepare's outs were cached"

    # a second push: the cache is hit, the sticky comment is updated, not duplicated
    for p in sorted(arts.iterdir()):
        subprocess.run(["rm", "-rf", str(p)], check=True)
    res = act(pr_clone, "pull_request", _pr_event(pr_clone), "mlspec-experiment.yml", store,
              wheel_dir, name="second push, cached")
    log = res.stdout + res.stderr
    (tmp_path / "act-2.log").write_text(log)
    assert res.returncode == 0, log[-6000:]
    assert "hit mlspec-prepare-" in log and "hit mlspec-select-train-" in log
    assert len(re.findall(r"\| hit mlspec-sweep-train-\S+\.(?:50|100|200)\b", log)) == 3, \
        "each sweep variant restores its own cache entry"
    assert re.search(r"pick the best variant of train\s*\]\s+\| \S+ train: up to date, skipped",
                     log), "the trained model restored from the cache was not reused"
    comments = json.loads((store / "github" / "comments.json").read_text())
    assert len(comments) == 1
    calls = (store / "github" / "calls.log").read_text()
    assert '"PATCH"' in calls

    # a PR from a fork is not run a third time here (each run costs minutes): the comment job's
    # condition is asserted on the generated workflow (test_github_properties)


def test_release_verify_job_on_tag(pr_clone: Path, tmp_path: Path,
                                   wheel_dir: Path) -> None:
    git("tag", "-a", "v1.0.0", "-m", "release", cwd=pr_clone)
    sha = git("rev-parse", "HEAD", cwd=pr_clone)
    repo = {"full_name": "acme/iris", "name": "iris", "owner": {"login": "acme"}}
    payload = {"ref": "refs/tags/v1.0.0", "after": sha, "repository": repo}
    store = tmp_path / "store"
    res = act(pr_clone, "push", payload, "mlspec-release.yml", store, wheel_dir,
              "-j", "verify", name="tag, verify")
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-6000:]
    _installed_by_the_generated_line(log)
    assert "verify the lock and gates at this commit" in _succeeded(log)
    outs = store / "artifacts" / "mlspec-release-outs"
    assert (outs / "model" / "model.pkl").is_file() and (outs / "mlspec.lock").is_file()
    assert not (store / "cache").exists(), "the release flow restores and saves no cache"
