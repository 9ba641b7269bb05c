"""`mlspec merge-lock`: the git merge driver of mlspec.lock (issue 14).

The merge tests run real `git merge`s of two branches, each of which ran `mlspec run`, with the
driver configured in the test repository exactly as the documented one-liner does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import BIN, git, init_repo, mlspec

from mlspec.gitops.lockmerge import GIT_CONFIG_COMMAND, GITATTRIBUTES_LINE, merge_locks
from mlspec.run.lock import Lock, StepLock, SweepLock

SPEC = """\
version: 1
project: {name: merge}
model:
  steps:
    a:
      command: cat a1.in a2.in > out/a.txt
      deps: [a1.in, a2.in]
      outs: [out/a.txt]
    b:
      command: cat b.in > out/b.txt
      deps: [b.in]
      outs: [out/b.txt]
"""


# -- the rule, entry by entry ---------------------------------------------------------------
def _step(key: str) -> StepLock:
    return StepLock(key=f"sha256:{key}", command="c", outs={"o": f"sha256:{key}"})


def test_one_side_wins_both_sides_differently_drop() -> None:
    base = Lock(env={"python": "3.11", "requirements": "r0"},
                steps={"a": _step("a0"), "b": _step("b0"), "c": _step("c0"), "gone": _step("g")},
                sweeps={"a": SweepLock(metric="m", best={"n": 1})})
    ours = Lock(env={"python": "3.11", "requirements": "r1"},
                steps={"a": _step("a1"), "b": _step("b0"), "c": _step("c1"), "new": _step("n")},
                sweeps={"a": SweepLock(metric="m", best={"n": 2})})
    theirs = Lock(env={"python": "3.12", "requirements": "r2"},
                  steps={"a": _step("a2"), "b": _step("b2"), "c": _step("c1"),
                         "gone": _step("g")},
                  sweeps={"a": SweepLock(metric="m", best={"n": 1})})
    merged = merge_locks(base, ours, theirs)
    assert merged.lock.steps == {"b": _step("b2"), "c": _step("c1"), "new": _step("n")}
    assert merged.lock.sweeps == {}  # a's sweep went with a's dropped entry
    assert merged.lock.env == {"python": "3.12"}  # requirements: changed on both sides
    assert merged.dropped == ["steps.a", "env.requirements"]
    # symmetric, and a lock that merges with itself is itself
    assert merge_locks(base, theirs, ours).lock.dump() == merged.lock.dump()
    assert merge_locks(base, ours, ours).lock.dump() == ours.dump()


def test_nan_metrics_compare_as_the_lock_writes_them() -> None:
    def lock() -> Lock:
        return Lock.parse(Lock(steps={"a": StepLock(key="k", metrics={"m": float("nan")})}).dump())

    ours = Lock(steps={"a": StepLock(key="k2")})
    assert merge_locks(lock(), ours, lock()).lock.steps == ours.steps


# -- the command ----------------------------------------------------------------------------
def test_an_invalid_lock_fails_and_writes_nothing(tmp_path: Path) -> None:
    good = Lock(steps={"a": _step("a")}).dump()
    (tmp_path / "base").write_text(good)
    (tmp_path / "ours").write_text(good)
    (tmp_path / "theirs").write_text("<<<<<<< HEAD\nsteps: [\n")
    r = mlspec("merge-lock", "base", "ours", "theirs", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "mlspec.lock (theirs)" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "ours").read_text() == good


def test_both_branches_added_the_lock(tmp_path: Path) -> None:
    """git passes an empty base when the file is new on both sides."""
    (tmp_path / "base").write_text("")
    (tmp_path / "ours").write_text(Lock(steps={"a": _step("a"), "c": _step("c1")}).dump())
    (tmp_path / "theirs").write_text(Lock(steps={"b": _step("b"), "c": _step("c2")}).dump())
    r = mlspec("merge-lock", "base", "ours", "theirs", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    merged = Lock.parse((tmp_path / "ours").read_text())
    assert merged.steps == {"a": _step("a"), "b": _step("b")}
    assert "steps.c changed on both branches; dropped" in r.stderr

# -- real git merges --------------------------------------------------------------------------
def _write(repo: Path, **files: str) -> None:
    for name, text in files.items():
        (repo / name.replace("_", ".")).write_text(text)


def _train(repo: Path, message: str) -> None:
    r = mlspec("run", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)


def _project(tmp_path: Path) -> tuple[Path, Path]:
    """main (a repository with the driver configured) and a worktree for the other branch,
    so each branch's run has its own git-ignored outs."""
    repo = init_repo(tmp_path / "repo")
    (repo / "mlspec.yaml").write_text(SPEC)
    (repo / ".gitattributes").write_text(GITATTRIBUTES_LINE + "\n")
    (repo / "out").mkdir()
    _write(repo, a1_in="1\n", a2_in="2\n", b_in="b\n")
    _train(repo, "first run")
    driver = GIT_CONFIG_COMMAND.split('"')[1].replace("mlspec ", f"{BIN / 'mlspec'} ", 1)
    git("config", "merge.mlspec-lock.driver", driver, cwd=repo)
    git("branch", "theirs", cwd=repo)
    other = tmp_path / "other"
    git("worktree", "add", "-q", str(other), "theirs", cwd=repo)
    (other / "out").mkdir(exist_ok=True)
    return repo, other


def _lock_at(repo: Path, ref: str) -> Lock:
    return Lock.parse(git("show", f"{ref}:mlspec.lock", cwd=repo) + "\n")


def _merge(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "merge", "--no-edit", "theirs"], cwd=repo,
                          capture_output=True, text=True)


def test_git_merge_of_different_steps_is_clean(tmp_path: Path) -> None:
    repo, other = _project(tmp_path)
    _write(repo, a1_in="ours\n")
    _train(repo, "retrain a")
    _write(other, b_in="theirs\n")
    _train(other, "retrain b")
    r = _merge(repo)
    assert r.returncode == 0, r.stdout + r.stderr
    merged = (repo / "mlspec.lock").read_text()
    assert "<<<<<<<" not in merged and ">>>>>>>" not in merged
    lock = Lock.parse(merged)
    assert lock.steps["a"] == _lock_at(repo, "HEAD~1").steps["a"]  # ours
    assert lock.steps["b"] == _lock_at(repo, "theirs").steps["b"]
    assert git("status", "--porcelain", cwd=repo) == ""
    # the merged lock is what a run of the merged tree records
    _ = mlspec("run", cwd=repo, check=True)
    assert (repo / "mlspec.lock").read_text() == merged


def test_git_merge_of_the_same_step_drops_it_and_status_shows_it_stale(tmp_path: Path) -> None:
    repo, other = _project(tmp_path)
    _write(repo, a1_in="ours\n")  # both branches retrain a, from different inputs
    _train(repo, "retrain a from a1")
    _write(other, a2_in="theirs\n")
    _train(other, "retrain a from a2")
    r = _merge(repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "steps.a changed on both branches; dropped" in r.stdout + r.stderr
    lock = Lock.parse((repo / "mlspec.lock").read_text())
    assert set(lock.steps) == {"b"}
    assert lock.steps["b"] == _lock_at(repo, "theirs").steps["b"]
    status = mlspec("status", "--json", cwd=repo)
    assert status.returncode == 0, status.stderr
    assert '"stale": [\n    "a"\n  ]' in status.stdout
    run = mlspec("run", cwd=repo)
    assert run.returncode == 0 and "a" in Lock.parse((repo / "mlspec.lock").read_text()).steps


def test_without_the_driver_the_same_step_conflicts(tmp_path: Path) -> None:
    """The control: git's line merge leaves conflict markers in the lock; the driver does not."""
    repo, other = _project(tmp_path)
    git("config", "--unset", "merge.mlspec-lock.driver", cwd=repo)
    _write(repo, a1_in="ours\n")
    _train(repo, "retrain a from a1")
    _write(other, a2_in="theirs\n")
    _train(other, "retrain a from a2")
    r = _merge(repo)
    assert r.returncode != 0 and "CONFLICT (content): Merge conflict in mlspec.lock" in r.stdout
    assert "<<<<<<<" in (repo / "mlspec.lock").read_text()


# -- installation by `mlspec init` -----------------------------------------------------------
def test_init_writes_the_gitattributes_line_and_prints_the_git_config_command(
        tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "new")
    r = mlspec("init", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = (repo / ".gitattributes").read_text().splitlines()
    assert GITATTRIBUTES_LINE in lines
    assert "created .gitattributes" in r.stdout and GIT_CONFIG_COMMAND in r.stdout
    check = git("check-attr", "merge", "--", "mlspec.lock", cwd=repo)
    assert check == "mlspec.lock: merge: mlspec-lock"
    # the printed command, run as printed, configures the driver
    subprocess.run(GIT_CONFIG_COMMAND, shell=True, cwd=repo, check=True)
    assert git("config", "merge.mlspec-lock.driver", cwd=repo) == "mlspec merge-lock %O %A %B"


def test_init_keeps_an_existing_gitattributes_and_says_what_to_add(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "has")
    (repo / ".gitattributes").write_text("*.csv binary\n")
    r = mlspec("init", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (repo / ".gitattributes").read_text() == "*.csv binary\n"
    assert f"kept .gitattributes; add: {GITATTRIBUTES_LINE}\n" in r.stdout
