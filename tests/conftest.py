"""Shared test fixtures.

External tools (Docker, act, gitlab-ci-local, the checkers) are used for real. On a laptop
without one, its tests skip with the reason; in CI (MLSPEC_REQUIRE_TOOLS=1, set by .ci/run)
the same situation fails the test instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
REQUIRE_TOOLS = os.environ.get("MLSPEC_REQUIRE_TOOLS") == "1"
BIN = Path(sys.executable).parent

# session fixtures of the pipeline and image tests: the one wheel, the one base image
pytest_plugins = ["pipelines_fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files under tests/**/expected/ from the current output")


# CI variables that steer base-ref detection and reports. Tests set the ones they need; none
# may leak in from the CI that runs this suite (a pull request sets GITHUB_BASE_REF).
CI_VARS = ("GITHUB_BASE_REF", "GITHUB_REF", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
           "CI_MERGE_REQUEST_DIFF_BASE_SHA", "CI_MERGE_REQUEST_IID", "CI_COMMIT_BRANCH",
           "GITHUB_STEP_SUMMARY")


@pytest.fixture(autouse=True)
def _no_ci_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in CI_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def need(condition: bool, reason: str) -> None:
    """Skip (laptop) or fail (CI) when an external tool is missing."""
    if condition:
        return
    if REQUIRE_TOOLS:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def tool(name: str) -> str:
    """Path of an executable from the venv or PATH; skip/fail when absent."""
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    need(found is not None, f"{name} is not installed")
    assert found is not None
    return found


def mlspec(*args: str, cwd: Path | str, check: bool = False, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed `mlspec` console script as a real subprocess."""
    exe = BIN / "mlspec"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlspec"]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, check=check,
                          env=full_env, timeout=timeout)


def git(*args: str, cwd: Path | str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


def init_repo(path: Path) -> Path:
    """A real git repository with an identity, on branch main."""
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", cwd=path)
    git("config", "user.email", "ci@example.com", cwd=path)
    git("config", "user.name", "mlspec tests", cwd=path)
    git("config", "commit.gpgsign", "false", cwd=path)
    return path


def copy_example(name: str, dest: Path, commit: bool = True) -> Path:
    """A git clone-like copy of examples/NAME (without generated outputs) in dest."""
    src = EXAMPLES / name
    ignore = shutil.ignore_patterns("data", "model", "metrics.json", "params.json", ".mlspec",
                                    "__pycache__")
    shutil.copytree(src, dest, ignore=ignore)
    init_repo(dest)
    if commit:
        git("add", "-A", cwd=dest)
        git("commit", "-q", "-m", f"{name} example", cwd=dest)
    return dest


@pytest.fixture
def iris_repo(tmp_path: Path) -> Iterator[Path]:
    yield copy_example("iris", tmp_path / "iris")


WHEEL_SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                                    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
                                    "tests", "bench", "examples")


@pytest.fixture(scope="session")
def mlspec_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite's one built wheel: `pip wheel --no-deps` of a copy of the source tree (the
    checkout stays clean; no stale in-tree build/)."""
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, tmp / "src", ignore=WHEEL_SKIP)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(tmp / "src"), "--no-deps",
                        "-q", "--disable-pip-version-check", "-w", str(tmp / "dist")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (tmp / "dist").glob("mlspec_gitops-*.whl")
    return wheel


def venv_with_wheel(venv: Path, wheel: Path, deps: Path, pth_name: str) -> Path:
    """A fresh venv holding `wheel` (no deps installed) whose dependencies come from the
    directory `deps`, read through the .pth file `pth_name`. Returns the venv."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    purelib = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], capture_output=True, text=True,
                             check=True).stdout.strip()
    Path(purelib, pth_name).write_text(f"{deps}\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(vpy), "install", "-q",
                        "--no-deps", "--disable-pip-version-check", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return venv
