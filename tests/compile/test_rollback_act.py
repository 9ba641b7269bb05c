"""The generated GitHub release workflow dispatched for a rollback, executed with `act` (host
mode, the stand-ins and wheel of tests/compile/test_github_act.py) in the real two-release
history of tests/gitops/rollback_helpers: the `workflow_dispatch` event carries the inputs
`mlspec rollback` sends (rollback_to, rollback_digest). Only `rollback-production` may run,
and its deploy command (`echo "deployed $IMAGE_DIGEST"`) must print the FIRST release's digest.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import git, mlspec
from test_github_act import _succeeded, act

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gitops"))
from rollback_helpers import FIRST, SECOND, two_releases

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = two_releases(tmp_path_factory.mktemp("rollback-act") / "repo")
    (root / "requirements.txt").write_text("# the toy steps need nothing\n")
    res = mlspec("compile", "--target", "github", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "the GitHub workflows", cwd=root)
    git("remote", "add", "origin", "https://github.com/acme/toy.git", cwd=root)
    return root


def _dispatch(root: Path, version: str, digest: str) -> dict[str, object]:
    repo = {"full_name": "acme/toy", "name": "toy", "owner": {"login": "acme"}}
    return {"ref": "refs/heads/main", "repository": repo,
            "inputs": {"rollback_to": version, "rollback_digest": digest}}


def test_dispatched_rollback_deploys_the_first_releases_digest(
        clone: Path, tmp_path: Path, wheel_dir: Path) -> None:
    res = act(clone, "workflow_dispatch", _dispatch(clone, "0.1.0", FIRST),
              "mlspec-release.yml", tmp_path / "store", wheel_dir, name="rollback")
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-6000:]
    assert _succeeded(log) == {"roll production back to a release"}, log[-6000:]
    assert f"| deployed {FIRST}" in log, log[-6000:]
    assert SECOND not in log


def test_a_digest_that_is_not_the_releases_stops_before_the_deploy(
        clone: Path, tmp_path: Path, wheel_dir: Path) -> None:
    res = act(clone, "workflow_dispatch", _dispatch(clone, "v0.1.0", SECOND),
              "mlspec-release.yml", tmp_path / "store", wheel_dir, name="rollback, bad digest")
    log = res.stdout + res.stderr
    assert res.returncode != 0
    assert "[rollback.digest]" in log and "| deployed" not in log, log[-6000:]
    assert _succeeded(log) == set()
