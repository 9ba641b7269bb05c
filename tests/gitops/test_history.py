"""`mlspec metrics --history` and the report's metric history: real git repositories (commits
written by `git fast-import`, checked out), the real `mlspec` console script."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest
from conftest import git, mlspec
from history_repo import SPEC, fast_history, lock_text

from mlspec.gitops import xychart
from mlspec.run.lock import SweepLock

F1 = [0.81, 0.85, 0.9, 0.88, 0.93]


def metrics(f1: float) -> dict[str, float]:
    return {"accuracy": round(f1 + 0.01, 4), "f1_macro": f1, "log_loss": round(1 - f1, 4)}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: five commits changing the lock; v0.1.0 (light) on the 2nd, v0.2.0 (annotated) on
    the 4th, a tag that is no release (`nightly`) on the 5th; HEAD on branch `pr`, whose
    working tree holds a better model."""
    root = tmp_path / "repo"
    fast_history(root, [lock_text(metrics(v)) for v in F1], tags={1: "v0.1.0", 4: "nightly"},
                 annotated={3: "v0.2.0"})
    git("checkout", "-q", "-b", "pr", cwd=root)
    (root / "mlspec.lock").write_text(lock_text(metrics(0.95)))
    return root


def history(root: Path, *args: str) -> str:
    r = mlspec("metrics", "--history", *args, cwd=root)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_json_lists_commits_release_tags_and_this_pr(repo: Path) -> None:
    shas = git("rev-list", "--reverse", "main", cwd=repo).split()
    data = json.loads(history(repo, "--format", "json"))
    assert data["branch"] == "main" and data["primary"] == "f1_macro"
    assert [m["name"] for m in data["metrics"]] == ["f1_macro", "accuracy", "log_loss"]
    points = data["points"]
    assert [p["label"] for p in points] == [shas[0][:7], "v0.1.0", shas[2][:7], "v0.2.0",
                                            shas[4][:7], "this PR"]  # `nightly`: no release
    assert [p["metrics"]["f1_macro"] for p in points] == [*F1, 0.95]
    assert points[1]["tags"] == ["v0.1.0"] and points[1]["commit"] == shas[1]
    assert points[-1] == {"label": "this PR", "kind": "worktree", "commit": None, "date": "",
                          "tags": [], "note": "", "metrics": metrics(0.95)}
    assert points[0]["date"] == "2026-01-01" and data["notes"] == []


def test_csv_and_table(repo: Path) -> None:
    shas = git("rev-list", "--reverse", "main", cwd=repo).split()
    csv = history(repo, "--format", "csv", "--limit", "2").splitlines()
    assert csv == [  # --limit 2: the last two commits, the two newest release tags
        "point,kind,date,commit,f1_macro,accuracy,log_loss,note",
        f"v0.1.0,tag,2026-01-01,{shas[1]},0.85,0.86,0.15,",
        f"v0.2.0,commit,2026-01-01,{shas[3]},0.88,0.89,0.12,",
        f"{shas[4][:7]},commit,2026-01-01,{shas[4]},0.93,0.94,0.07,",
        "this PR,worktree,,,0.95,0.96,0.05,",
    ]
    table = history(repo)
    assert table.splitlines()[0].split() == ["point", "date", "commit", "f1_macro", "*",
                                             "accuracy", "log_loss"]
    assert re.search(r"^this PR +— +— +0\.9500 +0\.9600 +0\.0500$", table, re.M)
    assert "(* primary metric)" in table


def test_limit_counts_commits_and_release_tags(repo: Path) -> None:
    data = json.loads(history(repo, "--format", "json", "--limit", "1"))
    assert [(p["kind"], p["label"]) for p in data["points"]] == [
        ("tag", "v0.2.0"), ("commit", data["points"][1]["commit"][:7]), ("worktree", "this PR")]


def test_markdown_section_golden(repo: Path) -> None:
    shas = git("rev-list", "--reverse", "main", cwd=repo).split()
    text = history(repo, "--format", "markdown", "--limit", "3")
    s = [sha[:7] for sha in shas]
    assert text == f"""\
`f1_macro` (primary, ↑ maximize) over 3 commits of `main` that changed `mlspec.lock`, \
2 release tags and this PR (the line marks its value):

```mermaid
xychart-beta
  title "f1_macro"
  x-axis ["v0.1.0", "{s[2]}", "v0.2.0", "{s[4]}", "this PR"]
  y-axis "f1_macro" 0.84 --> 0.96
  bar [0.85, 0.9, 0.88, 0.93, 0.95]
  line [0.95, 0.95, 0.95, 0.95, 0.95]
```

<details><summary>Values</summary>

| point | date | **f1_macro** | accuracy | log_loss | note |
|---|---|---:|---:|---:|---|
| `v0.1.0` | 2026-01-01 | 0.8500 | 0.8600 | 0.1500 |  |
| `{s[2]}` | 2026-01-01 | 0.9000 | 0.9100 | 0.1000 |  |
| `v0.2.0` | 2026-01-01 | 0.8800 | 0.8900 | 0.1200 |  |
| `{s[4]}` | 2026-01-01 | 0.9300 | 0.9400 | 0.0700 |  |
| **this PR** | — | 0.9500 | 0.9600 | 0.0500 |  |

</details>
"""


def test_reads_git_objects_not_the_work_tree(tmp_path: Path) -> None:
    """A corrupt lock and a deleted one in history are notes; the run goes on."""
    root = tmp_path / "repo"
    fast_history(root, [lock_text(metrics(0.8)), "steps: [\n", None, lock_text(metrics(0.9))])
    data = json.loads(history(root, "--format", "json"))
    notes = [(p["note"], p["metrics"]["f1_macro"]) for p in data["points"]]
    assert notes == [("", 0.8), ("corrupt mlspec.lock", None), ("no mlspec.lock", None),
                     ("", 0.9)]  # on main's tip with a clean tree: no extra point
    (root / "mlspec.lock").write_text(lock_text(metrics(0.99)))
    data = json.loads(history(root, "--format", "json"))
    assert data["points"][-1]["label"] == "working tree"


def test_a_spec_in_a_subdirectory(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    fast_history(root, [lock_text(metrics(v)) for v in F1[:2]], subdir="proj")
    data = json.loads(history(root / "proj", "--format", "json"))
    assert [p["metrics"]["f1_macro"] for p in data["points"]] == F1[:2]


def test_a_clone_without_the_default_branch_says_so(repo: Path, tmp_path: Path) -> None:
    git("commit", "-q", "-am", "better", cwd=repo)
    clone = tmp_path / "clone"
    git("clone", "-q", "--depth", "1", "--branch", "pr", f"file://{repo}", str(clone),
        cwd=tmp_path)
    r = mlspec("metrics", "--history", cwd=clone)
    assert r.returncode == 0, r.stderr
    assert "note: the default branch 'main' is not in this clone" in r.stdout
    assert re.search(r"^this PR .*0\.9500", r.stdout, re.M)
    git("fetch", "-q", "--depth", "2", "origin", "main:refs/remotes/origin/main", cwd=clone)
    r = mlspec("metrics", "--history", "--format", "json", cwd=clone)
    data = json.loads(r.stdout)
    assert len(data["points"]) == 3 and data["notes"] == [
        "this is a shallow clone: older commits are not fetched (fetch them, e.g. "
        "actions/checkout `fetch-depth: 0`, GitLab `GIT_DEPTH: 0`)"]


@pytest.mark.parametrize("args, message", [
    (["--history", "--diff", "main"], "--diff compares with one base"),
    (["--limit", "3"], "--limit applies to --history"),
    (["--format", "csv"], "--format csv applies to --history"),
    (["--history", "--limit", "0"], "--limit must be at least 1"),
])
def test_usage_errors(repo: Path, args: list[str], message: str) -> None:
    r = mlspec("metrics", *args, cwd=repo)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


# -- hostile input --------------------------------------------------------------------------
HOSTILE = ['"]', 'a"], bar [1', "`", "```", "line\nbreak", "cr\rlf", "%%{init: {}}%%",
           "#quot;", "x;y", "<script>", "\u202etxt", "\x00", "", " ", "ü" * 40, "[", "]"]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_label_cannot_leave_its_string(text: str) -> None:
    out = xychart.label(text)
    assert re.fullmatch(r'"[^"\n\r`%#;{}\[\]<>]{1,24}"', out), out
    assert re.fullmatch(r'"[^"\n\r`%#;{}\[\]<>]{1,60}"', xychart.label(text * 9, 60))
    assert out.isprintable()


def test_values_that_cannot_be_plotted_stay_in_the_table(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    values = [0.5, math.nan, 1e300, -math.inf, -0.25]
    fast_history(root, [lock_text({"f1_macro": v}) for v in values])
    text = history(root, "--format", "markdown")
    block = text.split("```mermaid\n")[1].split("```")[0]
    assert "  bar [0.5, -0.25]\n" in block and "nan" not in block and "e+" not in block
    assert "3 values not plotted (NaN, infinite or beyond ±1e+15)" in text
    assert "| nan |" in text and "| 1e+300 |" in text and "| -inf |" in text
    data = json.loads(history(root, "--format", "json"))  # strict JSON: no NaN token
    assert [p["metrics"]["f1_macro"] for p in data["points"]] == [0.5, None, 1e300, None, -0.25]


def test_hostile_names_cannot_break_the_block(tmp_path: Path) -> None:
    """Without design.metrics the lock's own keys are charted: a key from a PR's lock."""
    root = tmp_path / "repo"
    spec = SPEC.split("design:")[0] + "model:" + SPEC.split("model:")[1]
    key = 'x"]\n```\n%%{init: {"theme": "dark"}}%%'
    fast_history(root, [lock_text({key: 1.0}), lock_text({key: 2.0})], spec=spec)
    text = history(root, "--format", "markdown")
    from markdown_it import MarkdownIt

    fences = [t for t in MarkdownIt("commonmark").parse(text) if t.type == "fence"]
    assert len(fences) == 1 and fences[0].info == "mermaid"
    lines = fences[0].content.splitlines()
    assert [ln.split()[0] for ln in lines] == ["xychart-beta", "title", "x-axis", "y-axis",
                                               "bar"]
    assert "%%" not in fences[0].content and '{"' not in fences[0].content


def test_sweep_variants_get_a_chart(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    sweep = SweepLock("f1_macro", {"max_depth": 7}, [
        {"params": {"max_depth": d}, "metrics": {"f1_macro": f}}
        for d, f in [(3, 0.9), (5, 0.92), (7, 0.95)]] + [
        {"params": {"max_depth": '"]`'}, "metrics": {"f1_macro": math.nan}}])
    fast_history(root, [lock_text(metrics(0.9))])
    git("checkout", "-q", "-b", "pr", cwd=root)
    (root / "mlspec.lock").write_text(lock_text(metrics(0.95), sweep))
    r = mlspec("report", "--base", "main", cwd=root)
    assert r.returncode == 0, r.stderr
    assert ('  title "train: f1_macro by variant"\n'
            '  x-axis "max_depth" ["3", "5", "7 best"]\n'
            '  y-axis "f1_macro" 0.895 --> 0.955\n'
            '  bar [0.9, 0.92, 0.95]\n') in r.stdout


def test_the_report_stays_under_githubs_limit_with_a_large_history(tmp_path: Path) -> None:
    """3000 commits: the history loses its oldest points first, the comment fits."""
    from mlspec.gitops.commands import report_outcome
    from mlspec.gitops.history import gather
    from mlspec.gitops.report import MAX_CHARS, render
    from mlspec.spec.loader import load_spec

    root = tmp_path / "big"
    fast_history(root, [lock_text(metrics(0.5 + i / 10000)) for i in range(3000)],
                 tags={i: f"v1.{i}.0" for i in range(0, 3000, 7)})
    git("checkout", "-q", "-b", "pr", cwd=root)
    (root / "mlspec.lock").write_text(lock_text(metrics(0.95)))
    loaded = load_spec(root / "mlspec.yaml")
    from mlspec.gitops import commands

    lock, c, base = commands.comparison(loaded, "main")
    h = gather(root, loaded.spec, lock, limit=3000)
    assert len(h.points) == 3001
    full = render(loaded, c, lock, base, commands.lineage_worktree(loaded, lock), h)
    assert len(full) <= MAX_CHARS < 65_536
    assert "oldest points are left out to keep the comment under GitHub's size limit" in full
    assert "```mermaid\nxychart-beta" in full and "this PR" in full
    assert "Data and artifact hashes" in full  # the history went first
    assert report_outcome(loaded, "main", None).text.count("xychart-beta") == 1
    started = time.perf_counter()
    r = mlspec("metrics", "--history", "--limit", "3000", "--format", "csv", cwd=root)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3002
    assert time.perf_counter() - started < 30
