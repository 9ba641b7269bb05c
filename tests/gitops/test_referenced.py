"""gitops.referenced: the keys `mlspec gc --remote` keeps, from real git histories written with
`git fast-import` (commits 60 s apart from T0): the release tags' locks, the newest N commits
that changed the lock, those of the last D days, the working tree; an unreadable lock keeps
every key-shaped hash in it; a release commit missing from the clone refuses."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import git
from history_repo import T0, fast_history

from mlspec.errors import MlspecError
from mlspec.gitops.referenced import referenced
from mlspec.run.lock import Lock, StepLock


def key(i: int) -> str:
    return f"sha256:{i:064x}"


def lock(i: int) -> str:
    return Lock(env={"python": "3.11"}, steps={
        "train": StepLock(key=key(i), command="python t.py"),
        "prep": StepLock(key=key(10_000), command="python p.py")}).dump()


def test_tags_recent_commits_and_days(tmp_path: Path) -> None:
    locks: list[str | None] = [lock(i) for i in range(30)]
    locks[7] = "not: [a lock\n" + key(7) + "\n"  # corrupt, at a release tag
    locks[22] = None  # the lock deleted: no keys, a note if read
    shas = fast_history(tmp_path, locks, tags={2: "v0.1.0", 7: "v0.2.0-rc.1", 8: "foo",
                                               9: "vX"}, annotated={5: "v1.0.0"})
    r = referenced(tmp_path, "main", "v", keep_last=3)
    assert r.branch == "main" and r.tags == ["v0.1.0", "v0.2.0-rc.1", "v1.0.0"]
    assert r.commits == shas[27:][::-1]
    assert set(r.keys) == {key(i) for i in (2, 5, 7, 27, 28, 29, 10_000)}
    assert r.keys[key(29)] == [shas[29][:12], "working tree"]
    assert r.keys[key(5)] == ["v1.0.0"]
    assert any("v0.2.0-rc.1" in n and "unreadable" in n for n in r.notes), r.notes
    # the last day: commits at most 630 s older than the tip's, with keep_last 0
    now = T0 + 60 * 29 + 86400 - 630
    r = referenced(tmp_path, "main", "v", keep_last=0, keep_days=1, now=now)
    assert r.commits == shas[19:][::-1]
    assert {key(i) for i in range(19, 30) if i != 22} <= set(r.keys)
    assert key(18) not in r.keys and key(22) not in r.keys
    assert any("no mlspec.lock" in n for n in r.notes)
    # a tag prefix of "" reads bare versions only
    assert referenced(tmp_path, "main", "", keep_last=0).tags == []
    assert referenced(tmp_path, "main", "v", keep_last=0).tags == r.tags


def test_refuses_what_it_cannot_see(tmp_path: Path) -> None:
    fast_history(tmp_path / "a", [lock(1), lock(2)])
    with pytest.raises(MlspecError) as err:
        referenced(tmp_path / "a", "trunk", "v")
    assert "'trunk' is not in this clone" in err.value.diagnostics[0].message
    (tmp_path / "none").mkdir()
    with pytest.raises(MlspecError) as err:
        referenced(tmp_path / "none", "main", "v")
    assert "not a git repository" in err.value.diagnostics[0].message
    # a release tag naming a commit this clone lacks: git cannot list the refs; refuse
    repo = tmp_path / "b"
    fast_history(repo, [lock(1), lock(2), lock(3)], tags={0: "v1.0.0"})
    (repo / ".git" / "refs" / "tags" / "v2.0.0").write_text("1" * 40 + "\n")
    with pytest.raises(MlspecError) as err:
        referenced(repo, "main", "v", keep_last=1)
    assert "missing object" in err.value.diagnostics[0].message


def test_a_long_history_costs_a_few_processes(tmp_path: Path) -> None:
    """2,000 commits, 100 release tags, the newest 1,000 commits kept: timed."""
    shas = fast_history(tmp_path, [lock(i) for i in range(2000)],
                        annotated={i: f"v1.{i}.0" for i in range(0, 2000, 20)})
    t = time.perf_counter()
    r = referenced(tmp_path, "main", "v", keep_last=1000)
    took = time.perf_counter() - t
    assert len(r.commits) == 1000 and len(r.tags) == 100 and r.commits[0] == shas[-1]
    assert len(r.keys) == 1000 + 50 + 1
    print(f"referenced over 2000 commits / keep 1000 / 100 tags: {took:.3f} s")
    assert took < 10


def _commit_lock(root: Path, i: int, when: int) -> str:
    (root / "mlspec.lock").write_text(lock(i))
    env = {**os.environ, "GIT_COMMITTER_DATE": f"@{when} +0000",
           "GIT_AUTHOR_DATE": f"@{when} +0000"}
    for args in (["add", "mlspec.lock"], ["commit", "-q", "-m", f"lock {i}"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return git("rev-parse", "HEAD", cwd=root).strip()


def test_a_clone_behind_its_origin_refuses(tmp_path: Path) -> None:
    """A release tag or a default-branch commit the clone has not fetched would make their
    runs look unreferenced: refused until fetched."""
    origin = tmp_path / "origin"
    fast_history(origin, [lock(1), lock(2)])
    clone = tmp_path / "clone"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    assert referenced(clone, "main", "v").branch == "origin/main"
    git("tag", "-a", "v1.0.0", "-m", "release", cwd=origin)
    with pytest.raises(MlspecError) as err:
        referenced(clone, "main", "v")
    d = err.value.diagnostics[0]
    assert "release tags this clone lacks" in d.message and "v1.0.0" in d.message
    assert d.rule == "gc.history" and "git fetch --tags origin" in (d.hint or "")
    git("fetch", "-q", "--tags", "origin", cwd=clone)
    assert referenced(clone, "main", "v").tags == ["v1.0.0"]
    _commit_lock(origin, 3, int(time.time()))
    with pytest.raises(MlspecError) as err:
        referenced(clone, "main", "v")
    assert "origin's main is not the origin/main" in err.value.diagnostics[0].message
    git("fetch", "-q", "origin", cwd=clone)
    assert key(3) in referenced(clone, "main", "v").keys
    git("remote", "set-url", "origin", str(tmp_path / "gone"), cwd=clone)
    with pytest.raises(MlspecError) as err:
        referenced(clone, "main", "v")
    assert "cannot reach origin" in err.value.diagnostics[0].message


def test_the_days_window_reads_committer_times(tmp_path: Path) -> None:
    """One commit dated long ago (a rebase keeping dates) does not end the window, and a
    window longer than the epoch keeps every commit."""
    fast_history(tmp_path, [lock(0)])
    now = int(time.time())
    a = _commit_lock(tmp_path, 1, now - 5 * 86400)
    _commit_lock(tmp_path, 2, now - 200 * 86400)
    c = _commit_lock(tmp_path, 3, now - 2 * 86400)
    r = referenced(tmp_path, "main", "v", keep_last=0, keep_days=10, now=now)
    assert r.commits == [c, a]
    assert key(2) not in r.keys and key(0) not in r.keys
    r = referenced(tmp_path, "main", "v", keep_last=0, keep_days=30_000, now=now)
    assert len(r.commits) == 4 and {key(i) for i in range(4)} <= set(r.keys)
