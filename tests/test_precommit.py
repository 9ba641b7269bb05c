"""issue 12.15: the hooks in .pre-commit-hooks.yaml, run by the real `pre-commit` (try-repo
against this checkout, which installs mlspec from it as a user's pre-commit would) in a real
git repository: a valid project passes, a broken spec and a hand-edited workflow fail."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, REPO, git, init_repo, mlspec, tool


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PRE_COMMIT_HOME for the module: the hook environment is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def _try(project: Path, home: Path, hook: str) -> subprocess.CompletedProcess[str]:
    exe = tool("pre-commit")
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([exe, "try-repo", str(REPO), hook, "--all-files", "--color", "never"],
                          cwd=project, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "proj")
    assert mlspec("init", cwd=root).returncode == 0
    assert mlspec("compile", cwd=root).returncode == 0
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "start", cwd=root)
    return root


@pytest.mark.slow
def test_hooks_pass_on_a_valid_project_and_fail_on_mistakes(project: Path, home: Path) -> None:
    for hook in ("mlspec-validate", "mlspec-compile-check"):
        r = _try(project, home, hook)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Passed" in r.stdout, r.stdout

    # a spec mistake: the validate hook fails and shows the located diagnostic
    spec = project / "mlspec.yaml"
    good = spec.read_text()
    spec.write_text(good.replace("version: 1", "version: 7"))
    git("add", "-A", cwd=project)
    r = _try(project, home, "mlspec-validate")
    assert r.returncode == 1, r.stdout
    assert "Failed" in r.stdout and "mlspec.yaml:4:" in r.stdout, r.stdout
    spec.write_text(good)

    # a hand-edited generated workflow: the compile --check hook fails with the diff
    wf = project / ".github" / "workflows" / "mlspec-experiment.yml"
    wf.write_text(wf.read_text().replace("name: mlspec experiment", "name: edited by hand", 1))
    git("add", "-A", cwd=project)
    r = _try(project, home, "mlspec-compile-check")
    assert r.returncode == 1, r.stdout
    assert "Failed" in r.stdout and "mlspec-experiment.yml" in r.stdout, r.stdout


def test_the_hook_manifest_is_valid() -> None:
    exe = tool("pre-commit")
    r = subprocess.run([exe, "validate-manifest", str(REPO / ".pre-commit-hooks.yaml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
