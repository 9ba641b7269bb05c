"""Base detection: explicit refs, GitHub and GitLab request variables, the default branch,
and the clones CI makes (shallow, detached)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git
from gitops_helpers import copy_history, template

from mlspec.errors import MlspecError
from mlspec.gitops.commands import find_base_ref, lock_at


@pytest.fixture
def repo(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_history(template(tmp_path_factory), tmp_path / "repo")


def sha_of(root: Path, ref: str) -> str:
    return git("rev-parse", ref, cwd=root)


def test_feature_branch_uses_merge_base_with_default_branch(repo: Path) -> None:
    git("checkout", "-q", "main", cwd=repo)
    (repo / "later.txt").write_text("main moved on\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "main moves", cwd=repo)
    fork_point = sha_of(repo, "main~1")
    git("checkout", "-q", "deeper", cwd=repo)
    assert find_base_ref(repo, None) == fork_point
    assert find_base_ref(repo, "auto") == fork_point


def test_default_branch_uses_previous_commit(repo: Path) -> None:
    git("checkout", "-q", "main", cwd=repo)
    assert find_base_ref(repo, None) == sha_of(repo, "main~1")


def test_first_commit_has_no_base(repo: Path) -> None:
    git("checkout", "-q", "main~1", cwd=repo)
    git("checkout", "-q", "-B", "main", cwd=repo)
    assert find_base_ref(repo, None) is None


def test_explicit_ref_wins_and_unknown_ref_is_a_clear_error(repo: Path) -> None:
    assert find_base_ref(repo, "main") == "main"
    with pytest.raises(MlspecError) as err:
        find_base_ref(repo, "origin/nope")
    assert "unknown git ref 'origin/nope'" in str(err.value)
    assert "git fetch" in str(err.value)


def test_not_a_repository_has_no_base(tmp_path: Path) -> None:
    assert find_base_ref(tmp_path, None) is None


@pytest.fixture
def clone(repo: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "clone"
    git("clone", "-q", "--no-local", str(repo), str(dest), cwd=tmp_path)
    git("checkout", "-q", "deeper", cwd=dest)
    return dest


def test_github_pull_request_target(clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    assert find_base_ref(clone, None) == "origin/main"
    git("branch", "-q", "release-1", "origin/main", cwd=clone)
    monkeypatch.setenv("GITHUB_BASE_REF", "release-1")  # no origin/release-1: the local branch
    assert find_base_ref(clone, None) == "release-1"


def test_gitlab_merge_request_target(clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main")
    assert find_base_ref(clone, None) == "origin/main"


def test_gitlab_diff_base_sha(clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = sha_of(clone, "origin/main")
    monkeypatch.setenv("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "gone")
    monkeypatch.setenv("CI_MERGE_REQUEST_DIFF_BASE_SHA", base)
    assert find_base_ref(clone, None) == base


def test_request_target_missing_tells_how_to_fetch(clone: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_BASE_REF", "develop")
    with pytest.raises(MlspecError) as err:
        find_base_ref(clone, None)
    text = str(err.value)
    assert "'develop'" in text and "git fetch --depth=50 origin develop" in text


def test_detached_head_as_in_ci(clone: Path) -> None:
    git("checkout", "-q", "--detach", "deeper", cwd=clone)
    assert find_base_ref(clone, None) == sha_of(clone, "origin/main")
    lock = lock_at(clone, find_base_ref(clone, None) or "")
    assert lock is not None and lock.metrics()["f1_macro"] == 0.9665


def test_shallow_clone_of_branch_fails_with_fetch_hint(repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "shallow"
    git("clone", "-q", "--depth", "1", "--branch", "deeper", f"file://{repo}", str(dest),
        cwd=tmp_path)
    git("checkout", "-q", "--detach", cwd=dest)
    with pytest.raises(MlspecError) as err:
        find_base_ref(dest, None)
    text = str(err.value)
    assert "default branch 'main' is not in this clone" in text
    assert "git fetch --depth=50 origin main" in text
    # Following the hint works: fetch the base, then it is found.
    git("fetch", "-q", "--depth=50", "origin", "main:refs/remotes/origin/main", cwd=dest)
    git("fetch", "-q", "--deepen=50", "origin", cwd=dest)
    assert find_base_ref(dest, None) == sha_of(repo, "main")


def test_shallow_clone_of_default_branch(repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "shallow-main"
    git("clone", "-q", "--depth", "1", "--branch", "main", f"file://{repo}", str(dest),
        cwd=tmp_path)
    with pytest.raises(MlspecError) as err:
        find_base_ref(dest, None)
    assert "git fetch --deepen=1" in str(err.value)
    git("fetch", "-q", "--deepen=1", cwd=dest)
    assert find_base_ref(dest, None) == sha_of(repo, "main~1")


def test_lock_at_reads_committed_lock(repo: Path) -> None:
    base = lock_at(repo, "main")
    assert base is not None
    assert base.metrics() == {"accuracy": 0.9667, "f1_macro": 0.9665, "log_loss": 0.12}
    assert lock_at(repo, "main~1") is None  # no lock committed yet


def test_lock_at_in_a_subdirectory(repo: Path, tmp_path: Path) -> None:
    top = tmp_path / "mono"
    copy_history(repo, top / "proj")  # a repo at mono/proj; make mono the repo instead
    import shutil

    shutil.rmtree(top / "proj" / ".git")
    from conftest import init_repo

    init_repo(top)
    git("add", "-A", cwd=top)
    git("commit", "-q", "-m", "monorepo", cwd=top)
    lock = lock_at(top / "proj", "HEAD")
    assert lock is not None and lock.metrics()["accuracy"] == 0.9333


def test_new_branch_at_the_default_branch_tip_compares_with_it(repo: Path) -> None:
    git("checkout", "-q", "main", cwd=repo)
    git("checkout", "-q", "-b", "fresh", cwd=repo)
    assert find_base_ref(repo, None) == sha_of(repo, "main")  # not main's previous commit


def test_ci_branch_pipeline_on_a_detached_head(repo: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    git("checkout", "-q", "--detach", "main", cwd=repo)
    monkeypatch.setenv("CI_COMMIT_BRANCH", "main")  # GitLab, push to main
    assert find_base_ref(repo, None) == sha_of(repo, "main~1")
    monkeypatch.setenv("CI_COMMIT_BRANCH", "feature")  # a branch pipeline at main's commit
    assert find_base_ref(repo, None) == sha_of(repo, "main")
    monkeypatch.delenv("CI_COMMIT_BRANCH")
    monkeypatch.setenv("GITHUB_REF", "refs/heads/main")  # GitHub, push to main
    assert find_base_ref(repo, None) == sha_of(repo, "main~1")


def test_shallow_clone_explicit_parent_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    from conftest import mlspec

    dest = tmp_path / "shallow1"
    git("clone", "-q", "--depth", "1", "--branch", "deeper", f"file://{repo}", str(dest),
        cwd=tmp_path)
    parent = sha_of(repo, "deeper~1")
    for ref in ("HEAD~1", parent):
        r = mlspec("metrics", "--diff", ref, cwd=dest)
        assert r.returncode == 2, r.stdout
        assert f"unknown git ref '{ref}'" in r.stderr and "git fetch" in r.stderr
        assert "Traceback" not in r.stderr


def test_tag_pipeline_on_an_older_default_branch_commit(repo: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    git("checkout", "-q", "main", cwd=repo)
    (repo / "later.txt").write_text("main moved on\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "main moves", cwd=repo)
    git("checkout", "-q", "--detach", "main~1", cwd=repo)  # as CI checks out tag v1.0.0
    monkeypatch.setenv("GITHUB_REF", "refs/tags/v1.0.0")
    assert find_base_ref(repo, None) == sha_of(repo, "main~2")  # its parent, not itself
