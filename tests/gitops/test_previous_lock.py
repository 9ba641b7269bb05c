"""The fast baseline lookup (gitrefs.previous_lock) answers as the general path does, or not at
all: every case it takes must give find_base_ref's ref and lock_at's lock text."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git, init_repo

from mlspec.gitops.gitrefs import find_base_ref, lock_at, open_repo, previous_lock, read_at

LOCK = 'version: 1\nenv: {}\nsteps: {}\n'


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


def _general(root: Path) -> tuple[str, str | None] | None:
    ref = find_base_ref(root, None, "main")
    if ref is None:
        return None
    repo = open_repo(root)
    assert repo is not None
    rel = Path(root).resolve().relative_to(Path(str(repo.working_tree_dir)).resolve())
    path = "mlspec.lock" if str(rel) == "." else f"{rel.as_posix()}/mlspec.lock"
    return ref, read_at(repo, ref, path)


@pytest.mark.parametrize("sub", ["", "examples/iris"])
def test_on_the_default_branch_it_agrees_with_the_general_path(tmp_path: Path, sub: str) -> None:
    repo = init_repo(tmp_path / "r")
    root = repo / sub if sub else repo
    first = _commit(repo, {f"{sub}/mlspec.lock".lstrip("/"): LOCK}, "one")
    _commit(repo, {f"{sub}/x.txt".lstrip("/"): "x"}, "two")
    assert previous_lock(root, "main") == (first, LOCK) == _general(root)
    assert lock_at(root, first) is not None


def test_a_parent_without_a_lock_has_none(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    first = _commit(repo, {"a.txt": "a"}, "one")
    _commit(repo, {"mlspec.lock": LOCK}, "two")
    assert previous_lock(repo, "main") == (first, None) == _general(repo)


def test_a_directory_named_like_the_lock_is_no_lock(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    first = _commit(repo, {"mlspec.lock/x": "a"}, "one")
    _commit(repo, {"b.txt": "b"}, "two")
    assert previous_lock(repo, "main") == (first, None) == _general(repo)


def test_other_cases_are_left_to_the_general_path(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    repo = init_repo(tmp_path / "r")
    assert previous_lock(repo, "main") is None  # no commit yet
    _commit(repo, {"mlspec.lock": LOCK}, "one")
    assert previous_lock(repo, "main") == (None, None)  # a first commit: no baseline
    assert find_base_ref(repo, None, "main") is None
    _commit(repo, {"a.txt": "a"}, "two")
    assert previous_lock(repo, "trunk") is None  # not on the default branch
    git("checkout", "-q", "--detach", cwd=repo)
    assert previous_lock(repo, "main") is None  # detached (CI)
    git("checkout", "-q", "main", cwd=repo)
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    assert previous_lock(repo, "main") is None  # a pull request: the CI rules
    monkeypatch.delenv("GITHUB_BASE_REF")
    assert previous_lock(repo, "main") is not None
    assert previous_lock(tmp_path / "nowhere", "main") is None


def test_a_shallow_clone_without_the_parent_is_left_to_the_general_path(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    _commit(repo, {"mlspec.lock": LOCK}, "one")
    _commit(repo, {"a.txt": "a"}, "two")
    git("clone", "-q", "--depth", "1", f"file://{repo}", str(tmp_path / "s"), cwd=tmp_path)
    assert previous_lock(tmp_path / "s", "main") is None  # the general path says "fetch it"
