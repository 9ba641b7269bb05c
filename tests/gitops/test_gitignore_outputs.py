"""issue 12.12: `compile` and `run` keep .gitignore covering every declared out, so `release`
no longer advises committing run outputs."""

from __future__ import annotations

from pathlib import Path

from conftest import git, init_repo, mlspec
from gitops_helpers import commit, env, write_project

LINES = ["/data/toy.csv", "/model/model.json", "/metrics.json", "/params.json", "/.mlspec/"]


def _project(tmp_path: Path, gitignore: str | None) -> Path:
    root = init_repo(tmp_path / "repo")
    write_project(root, 5)
    (root / ".gitignore").unlink()
    if gitignore is not None:
        (root / ".gitignore").write_text(gitignore)
    return root


def test_run_adds_the_missing_lines_and_release_stops_advising_to_commit_outputs(
        tmp_path: Path) -> None:
    root = _project(tmp_path, None)
    commit(root, "start", "2026-01-01T10:00:00Z")
    r = mlspec("run", "--no-gates", cwd=root, env=env())
    assert r.returncode == 0, r.stderr
    assert f"added to .gitignore: {', '.join(LINES)}" in r.stderr
    text = (root / ".gitignore").read_text()
    assert text.splitlines()[1:] == LINES
    status = git("status", "--porcelain", "--untracked-files=all", cwd=root).splitlines()
    assert sorted(line[3:] for line in status) == [".gitignore", "mlspec.lock"]
    commit(root, "run", "2026-01-01T11:00:00Z")
    r = mlspec("release", "1.0.0", cwd=root, env=env())
    assert r.returncode == 0, r.stdout + r.stderr
    # nothing more to add: said once
    r = mlspec("run", "--no-gates", cwd=root, env=env())
    assert "gitignore" not in r.stderr and (root / ".gitignore").read_text() == text


def test_compile_keeps_the_users_lines_and_their_negations(tmp_path: Path) -> None:
    mine = "# mine\n*.log\n/data/\n/model/*\n!/model/model.json\nsecret.txt"  # no final newline
    root = _project(tmp_path, mine)
    r = mlspec("compile", "--check", cwd=root)
    assert "does not ignore /metrics.json, /params.json, /.mlspec/" in r.stderr
    assert (root / ".gitignore").read_text() == mine  # --check writes nothing
    r = mlspec("compile", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "added to .gitignore: /metrics.json, /params.json, /.mlspec/ " in r.stderr
    text = (root / ".gitignore").read_text()
    assert text.startswith(mine + "\n\n# outputs of `mlspec run`")
    # model/ is un-ignored on purpose: left alone; data/ is covered by the user's own line
    assert "/model/model.json" not in text.splitlines() and "/data/toy.csv" not in text
    assert git("check-ignore", "params.json", ".mlspec/x", "metrics.json", cwd=root).split() \
        == ["params.json", ".mlspec/x", "metrics.json"]


def test_without_git_the_lines_are_matched_by_hand(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write_project(root, 5)
    (root / ".gitignore").write_text("data/\n/model\n")
    r = mlspec("compile", "--target", "github", cwd=root)
    assert r.returncode == 0, r.stderr
    assert (root / ".gitignore").read_text().splitlines()[4:] == LINES[2:]
