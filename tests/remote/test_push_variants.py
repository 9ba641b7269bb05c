"""`mlspec push --set`: a sweep variant's run (what a CI matrix job runs with `mlspec run
--set`) is pushed under its own key and pulled by the next pipeline's variant; and a push of
runs the remote already holds copies nothing into the local cache (a CI job's upstream steps
arrive as artifacts and were pushed by the job that made them). A file:// remote: no
registry needed."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import git, mlspec
from remote_registry import make_repo

SPEC = """
version: 1
project: {name: variants, remote: "file://STORE"}
design:
  hypothesis: h
  metrics: {score: {goal: maximize, primary: true}}
model:
  steps:
    make:
      command: python src/make.py
      deps: [src/make.py]
      outs: [out/made.txt]
    fit:
      command: python src/fit.py
      deps: [src/fit.py, out/made.txt]
      params: {n: 1}
      sweep: {n: [1, 2]}
      outs: [out/fit.txt]
      metrics: out/metrics.json
"""
FILES = {
    "src/make.py": """
        import os, pathlib
        open(os.environ["COUNTER"], "a").write("make\\n")
        pathlib.Path("out").mkdir(exist_ok=True)
        pathlib.Path("out/made.txt").write_text("made\\n")
    """,
    "src/fit.py": """
        import json, os, pathlib
        open(os.environ["COUNTER"], "a").write("fit\\n")
        p = json.load(open("params.json")); n = p.get("fit", p)["n"]
        pathlib.Path("out/fit.txt").write_text(f"{n}\\n")
        pathlib.Path("out/metrics.json").write_text(json.dumps({"score": n}))
    """,
}


def _runs(tmp: Path) -> list[str]:
    c = tmp / "counter"
    return c.read_text().split() if c.exists() else []


def test_a_variant_is_pushed_with_its_set_and_pulled_by_the_next(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    env = {"COUNTER": str(tmp_path / "counter"), "MLSPEC_REMOTE": f"file://{store}"}
    origin = make_repo(tmp_path / "origin", SPEC.replace("STORE", str(store)), FILES)
    r = mlspec("run", cwd=origin, env={**env, "MLSPEC_REMOTE": ""})
    assert r.returncode == 0, r.stdout + r.stderr
    git("add", "-A", cwd=origin)
    git("commit", "-q", "-m", "lock", cwd=origin)
    (tmp_path / "counter").unlink()

    first = tmp_path / "first"
    git("clone", "-q", str(origin), str(first), cwd=tmp_path)
    r = mlspec("run", "fit", "--no-gates", "--set", "n=2", cwd=first, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _runs(tmp_path) == ["make", "fit"]
    r = mlspec("push", "fit", cwd=first, env=env)  # the spec's params: not what ran
    assert r.returncode == 1 and "fit: stale" in r.stdout and "pushed make" in r.stdout, \
        r.stdout + r.stderr
    r = mlspec("push", "fit", "--set", "n=2", cwd=first, env=env)
    assert r.returncode == 0 and "pushed fit" in r.stdout, r.stdout + r.stderr

    # the next pipeline's variant job: pulls, executes nothing
    second = tmp_path / "second"
    git("clone", "-q", str(origin), str(second), cwd=tmp_path)
    r = mlspec("run", "fit", "--no-gates", "--set", "n=2", cwd=second, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _runs(tmp_path) == ["make", "fit"], r.stdout + r.stderr
    assert (second / "out/fit.txt").read_text() == "2\n"

    # everything already in the remote: nothing is copied into the local cache
    shutil.rmtree(second / ".mlspec" / "cache")
    r = mlspec("push", "fit", "--set", "n=2", cwd=second, env=env)
    assert r.returncode == 0 and "0 pushed, 2 already there" in r.stdout, r.stdout + r.stderr
    assert not (second / ".mlspec" / "cache").exists()
